"""``cnxp-audit scan PATH...``: every checkpoint under folders, globs and zips, plus a summary."""

from __future__ import annotations

import click

from ..policy import build_policy
from ..scan import scan
from .options import audit_options, build_labels, build_registry, check_output, report_options
from .progress import progress_bar
from .render_out import emit_report


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@report_options
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Read files in this many processes; output order does not change.")
def command(paths, fmt, verbose, quiet, fail_on, output, label, labels_file, variants_file, tensors, hashes,
            torch_version, allow, policy_file, jobs):
    """Find checkpoints by content (not extension) and audit them all."""
    check_output(output)  # before anything is read: a bad -o costs one line, not a whole run
    policy = build_policy(allow, policy_file)
    registry = build_registry(variants_file)
    labels = build_labels(registry, label, labels_file)
    options = audit_options(policy, tensors=tensors, hashes=hashes, torch_version=torch_version)
    with progress_bar(not quiet) as progress:
        report = scan(paths, registry, labels, options, jobs=jobs, progress=progress)
    report.policy = policy.to_dict()
    return emit_report(report, fmt, fail_on=fail_on, verbose=verbose, quiet=quiet, output=output)
