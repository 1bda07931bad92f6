"""``cnxp-audit tensors PATH...``: list a checkpoint's state dict, as ffprobe lists streams."""

from __future__ import annotations

import dataclasses
import fnmatch

import click

from ..audit import AuditResult, Report, audit_paths
from ..policy import build_policy
from ..render.formats import get_format
from .options import audit_options, build_registry, policy_options, variants_option
from .output import write_output
from .render_out import render_options, resolve_format

FORMATS = ("table", "text", "markdown", "json")
#: A listing succeeds unless a file could not be read or is unsafe; the label is not judged here.
FAIL_ON = ("unreadable", "unsafe")


@click.command("tensors")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--match", "pattern", metavar="GLOB",
              help="Only tensors whose name, with or without the wrapper prefix, matches GLOB ('head.*').")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format (table prints text when piped).")
@variants_option
@policy_options
def command(paths, pattern, fmt, variants_file, allow, policy_file):
    """List each checkpoint's state dict: name, dtype, shape and elements of every tensor, in file order.

    Exit 0 when every file was listed, 3 if one could not be read, 4 if one is unsafe.
    """
    policy = build_policy(allow, policy_file)
    report = audit_paths(paths, build_registry(variants_file), options=audit_options(policy, tensors=True))
    report.policy = policy.to_dict()
    if pattern:
        report = dataclasses.replace(report, files=[_matching(r, pattern) for r in report.files])
    name = resolve_format(fmt, None)
    write_output(get_format(name).render_tensors(report, render_options(name, fail_on=FAIL_ON)), None)
    return report.exit_code_under(FAIL_ON)


def _matching(r: AuditResult, pattern: str) -> AuditResult:
    """``r`` listing only the tensors whose name (or name without the wrapper prefix) matches."""
    prefix = r.fingerprint.prefix if r.fingerprint else ""

    def hit(name: str) -> bool:
        return fnmatch.fnmatchcase(name, pattern) or (
            bool(prefix) and name.startswith(prefix) and fnmatch.fnmatchcase(name[len(prefix):], pattern))

    if r.tensors is None:
        return r
    return dataclasses.replace(r, tensors=[t for t in r.tensors if hit(t["name"])])
