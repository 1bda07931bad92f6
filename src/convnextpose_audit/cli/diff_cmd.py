"""``cnxp-audit diff A B``: are two checkpoints the same weights, the same architecture, or neither?"""

from __future__ import annotations

import click

from ..compare import compare
from ..exitcodes import ExitCode
from ..reader import open_checkpoint
from ..render.formats import get_format
from ..policy import build_policy
from .options import policy_options
from .output import write_output
from .render_out import render_options, resolve_format

FORMATS = ("table", "text", "markdown", "json")


@click.command("diff")
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format (table prints text when piped).")
@click.option("-v", "--verbose", is_flag=True, help="List every tensor and every class of change.")
@policy_options
def command(a, b, fmt, verbose, allow, policy_file):
    """Compare the state dicts of A and B: keys, shapes, dtypes and values (streamed tensor by tensor).

    Without -v: counts, one line per class of change and the 10 largest changes.
    Exit 0 for identical weights, 1 when weights or architecture differ.
    """
    names = build_policy(allow, policy_file).names
    with open_checkpoint(a, allow=names) as ca, open_checkpoint(b, allow=names) as cb:
        result = compare(ca, cb)
    name = resolve_format(fmt, None)
    write_output(get_format(name).render_diff(result, render_options(name, verbose=verbose)), None)
    return ExitCode.OK if result.identical else ExitCode.MISMATCH
