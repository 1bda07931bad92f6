"""``cnxp-audit variants``: the registry with its provenance."""

from __future__ import annotations

import json

import click

from ..exitcodes import ExitCode
from .options import build_registry, variants_option
from .output import print_renderable, write_output


@click.command("variants")
@variants_option
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
def command(variants_file, fmt):
    """Print the variant registry: each variant's features and where each number comes from."""
    registry = build_registry(variants_file)
    if fmt == "json":
        from ..render.json import SCHEMA_VERSION, tool
        from ..render.registry import registry_dict

        write_output(json.dumps({"schema_version": SCHEMA_VERSION, "tool": tool(), **registry_dict(registry)},
                                indent=2) + "\n", None)
    else:
        from ..render.registry import registry_table
        print_renderable(registry_table(registry))
    return ExitCode.OK
