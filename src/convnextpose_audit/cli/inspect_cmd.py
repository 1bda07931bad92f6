"""``cnxp-audit inspect PATH...``: one row per checkpoint, verdict and evidence."""

from __future__ import annotations

import click

from ..audit import AuditOptions, audit_paths
from .options import (build_labels, build_registry, format_option, label_option, labels_option, variants_option,
                      verbose_option)
from .render_out import emit_report


@click.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@format_option()
@verbose_option
@label_option
@labels_option
@variants_option
@click.option("--tensors", is_flag=True, help="Add the state dict's tensors (name, dtype, shape) to JSON.")
@click.option("--hash", "hashes", is_flag=True, help="Add SHA-256 per tensor and a state-dict digest (reads tensor bytes).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report here (only after success).")
def command(paths, fmt, verbose, label, labels_file, variants_file, tensors, hashes, output):
    """Infer the variant of each checkpoint and compare it with its declared label."""
    registry = build_registry(variants_file)
    labels = build_labels(registry, label, labels_file)
    report = audit_paths(paths, registry, labels, AuditOptions(tensors=tensors, hashes=hashes))
    emit_report(report, fmt, verbose=verbose, output=output)
    return report.exit_code
