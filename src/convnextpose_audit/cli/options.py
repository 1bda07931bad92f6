"""Options shared by several commands, and turning them into library objects."""

from __future__ import annotations

import click

from ..audit import Labels
from ..labels import load_manifest
from ..variants import Registry, load_registry

FORMATS = ("table", "json", "markdown")


def format_option(choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True,
                        help="Output format; JSON is stable for scripts (schema_version 1).")


variants_option = click.option("--variants", "variants_file", type=click.Path(dir_okay=False),
                               help="TOML file of extra/replacement registry entries.")
label_option = click.option("--label", help="Declared label for every file (overrides file names).")
labels_option = click.option("--labels", "labels_file", type=click.Path(dir_okay=False),
                             help="Manifest of declared labels: CSV rows 'name,label' or JSON {name: label}.")
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Print the evidence chain per file.")


def build_registry(variants_file: str | None) -> Registry:
    """Built-in registry plus ``--variants``."""
    return load_registry(variants_file)


def build_labels(registry: Registry, label: str | None, labels_file: str | None) -> Labels:
    """Declared-label sources from ``--label`` and ``--labels``."""
    forced = registry.get(label).label if label else None
    manifest = load_manifest(labels_file, registry) if labels_file else {}
    return Labels(forced=forced, manifest=manifest)
