"""``cnxp-audit diff A B``: are two checkpoints the same weights, the same architecture, or neither?"""

from __future__ import annotations

import json

import click

from ..compare import compare
from ..exitcodes import ExitCode
from ..reader import open_checkpoint
from ..render.diff import comparison_dict, comparison_table
from .output import print_renderable, write_output


@click.command("diff")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="List every tensor, not only those that differ.")
def command(a, b, fmt, verbose):
    """Compare the state dicts of A and B: keys, shapes, dtypes and values (streamed tensor by tensor).

    Exit 0 for identical weights, 1 when weights or architecture differ.
    """
    with open_checkpoint(a) as ca, open_checkpoint(b) as cb:
        result = compare(ca, cb)
    if fmt == "json":
        write_output(json.dumps(comparison_dict(result), indent=2) + "\n", None)
    else:
        print_renderable(comparison_table(result, verbose=verbose))
    return ExitCode.OK if result.identical else ExitCode.MISMATCH
