"""``cnxp-audit inspect PATH...``: one row per checkpoint, verdict and evidence."""

from __future__ import annotations

import click

from ..audit import audit_paths
from ..policy import build_policy
from .options import audit_options, build_labels, build_registry, check_output, report_options
from .render_out import emit_report


@click.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@report_options
def command(paths, fmt, verbose, quiet, fail_on, output, label, labels_file, variants_file, tensors, hashes,
            torch_version, allow, policy_file):
    """Infer the variant of each checkpoint and compare it with its declared label."""
    check_output(output)  # before anything is read: a bad -o costs one line, not a whole run
    policy = build_policy(allow, policy_file)
    registry = build_registry(variants_file)
    labels = build_labels(registry, label, labels_file)
    report = audit_paths(paths, registry, labels, audit_options(policy, tensors=tensors, hashes=hashes,
                                                                torch_version=torch_version))
    report.policy = policy.to_dict()
    return emit_report(report, fmt, fail_on=fail_on, verbose=verbose, quiet=quiet, output=output)
