"""Options shared by several commands, and turning them into library objects."""

from __future__ import annotations

import os

import click

from ..audit import DEFAULT_FAIL_ON, FAIL_ON_CHOICES, AuditOptions, Labels
from ..errors import OutputError
from ..labels import load_manifest
from ..policy import Policy
from ..render.formats import FORMATS as FORMAT_REGISTRY
from ..variants import Registry, load_registry

FORMATS = tuple(FORMAT_REGISTRY)


def format_option(choices=FORMATS):
    return click.option("--format", "fmt", type=click.Choice(choices), default="table", show_default=True,
                        help="Output format: table (a terminal; piped or -o, it prints text), text (one line per "
                             "file), markdown, json (stable for scripts, schema_version 1), sarif (SARIF 2.1.0 for "
                             "code scanning).")


variants_option = click.option("--variants", "variants_file", type=click.Path(dir_okay=False),
                               help="TOML file of extra/replacement registry entries.")
label_option = click.option("--label", help="Declared label for every file (overrides file names).")
labels_option = click.option("--labels", "labels_file", type=click.Path(dir_okay=False),
                             help="Manifest of declared labels: CSV rows 'name,label' or JSON {name: label}.")
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Print the evidence chain per file.")


def _torch_version(ctx, param, value: str | None) -> str | None:
    # Checked only when given: the versions are data, read only when a prediction is made.
    from ..weights_only import versions

    if value is not None and value not in versions():
        raise click.BadParameter(f"{value!r} is not one of {', '.join(versions())}")
    return value


def policy_options(command):
    """``--allow NAME`` (repeatable) and ``--policy FILE``: globals a team accepts by name (see policy.py)."""
    for option in reversed([
        click.option("--allow", "allow", multiple=True, metavar="MODULE.NAME",
                     help="Accept this global by its exact dotted name, as torch.serialization.add_safe_globals "
                          "would (repeatable); a file naming only accepted globals is not UNSAFE."),
        click.option("--policy", "policy_file", type=click.Path(dir_okay=False), metavar="FILE",
                     help="TOML policy: [allow] \"module.name\" = \"reason\" per accepted global."),
    ]):
        command = option(command)
    return command


torch_version_option = click.option(
    "--torch-version", "torch_version", callback=_torch_version, default=None, metavar="X.Y",
    help="Predict torch.load(weights_only=True) for this torch (2.4 ... newest; default: the newest known).")


def audit_options(policy: Policy, *, tensors: bool = False, hashes: bool = False,
                  torch_version: str | None = None) -> AuditOptions:
    """The AuditOptions of a command line."""
    return AuditOptions(tensors=tensors, hashes=hashes, allow=policy.names, torch_version=torch_version)


def build_registry(variants_file: str | None) -> Registry:
    """Built-in registry plus ``--variants``."""
    return load_registry(variants_file)


def build_labels(registry: Registry, label: str | None, labels_file: str | None) -> Labels:
    """Declared-label sources from ``--label`` and ``--labels``."""
    forced = registry.get(label).label if label else None
    manifest = load_manifest(labels_file, registry) if labels_file else {}
    return Labels(forced=forced, manifest=manifest)


def check_output(path: str | None, *, force: bool = True) -> None:
    """Raise :class:`OutputError` (exit 2) unless ``path`` can be written: call it before any audit,
    so a typo in ``-o`` costs one line, not a whole run. ``force=False`` refuses an existing file."""
    if path is None:
        return
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a folder; give a file name")
    if not force and os.path.lexists(path):
        raise OutputError(f"{path}: already exists (use --force to overwrite)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {folder} (permission denied)")


def _split_fail_on(ctx, param, values) -> tuple[str, ...]:
    if not values:
        return DEFAULT_FAIL_ON
    chosen: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip().lower()
            if item == "none":
                continue
            if item not in FAIL_ON_CHOICES:
                raise click.BadParameter(f"{item!r} is not one of {', '.join(FAIL_ON_CHOICES)}, none")
            chosen.append(item)
    return tuple(chosen)


def report_options(command):
    """Options shared by inspect, scan and fetch: output format, policy, quiet, output file."""
    for option in reversed([
        format_option(),
        verbose_option,
        click.option("-q", "--quiet", is_flag=True, help="Table/markdown: only rows that fail the run."),
        click.option("--fail-on", "fail_on", multiple=True, callback=_split_fail_on, metavar="LIST",
                     help=f"Verdicts that fail the run, comma-separated from {', '.join(FAIL_ON_CHOICES)} "
                          f"or none ('skipped': any file skipped as not a checkpoint gives exit 3). "
                          f"Default: {','.join(DEFAULT_FAIL_ON)}. A run that audits nothing exits 5, "
                          "an internal error 70, whatever the policy."),
        click.option("-o", "--output", type=click.Path(dir_okay=False),
                     help="Write the report here instead of stdout, only once the audit has finished "
                          "(its folder is checked first)."),
        label_option, labels_option, variants_option,
        click.option("--tensors", is_flag=True, help="List each state dict's tensors (name, dtype, shape, elements)."),
        click.option("--hash", "hashes", is_flag=True,
                     help="Add SHA-256 per tensor and a state-dict digest, and say which files hold the same "
                          "weights (reads tensor bytes)."),
        torch_version_option,
    ]):
        command = option(command)
    return policy_options(command)
