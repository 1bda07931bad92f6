"""``cnxp-audit fetch URL_OR_ID``: download a Drive folder with gdown, then scan it."""

from __future__ import annotations

import click

import os

from ..errors import DownloadFailed, UsageError
from ..fetch import OFFICIAL_FOLDER, fetch, parse_target
from ..policy import build_policy
from ..scan import scan
from .options import audit_options, build_labels, build_registry, check_output, report_options
from .output import info
from .progress import progress_bar
from .render_out import emit_report


@click.command("fetch")
@click.argument("url_or_id", required=False, default=OFFICIAL_FOLDER)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="ConvNeXtPose-drive", show_default=True,
              help="Folder to download into.")
@report_options
def command(url_or_id, out_dir, fmt, verbose, quiet, fail_on, output, label, labels_file, variants_file, tensors,
            hashes, torch_version, allow, policy_file):
    """Download a public Google Drive folder (default: the official ConvNeXtPose one) and scan it.

    A folder URL or bare id downloads the folder; a file URL one file. Files already
    present with the same size are skipped. Exits with scan's code; download failures exit 3.
    """
    check_output(output)  # before anything is read: a bad -o costs one line, not a whole run
    policy = build_policy(allow, policy_file)
    try:  # a malformed URL is the command line's fault (exit 2), not a failed download (exit 3)
        parse_target(url_or_id)
    except DownloadFailed as exc:
        raise UsageError(str(exc)) from None
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise UsageError(f"{out_dir}: exists and is not a folder (--out needs a folder)")
    registry = build_registry(variants_file)
    labels = build_labels(registry, label, labels_file)
    fetched = fetch(url_or_id, out_dir, quiet=quiet, log=info if not quiet else (lambda _m: None))
    if not quiet:
        done = sum(f.status == "downloaded" for f in fetched)
        info(f"{done} downloaded, {len(fetched) - done} already present; scanning {out_dir}")
    with progress_bar(not quiet) as progress:
        report = scan([out_dir], registry, labels, audit_options(policy, tensors=tensors, hashes=hashes,
                                                                  torch_version=torch_version), progress=progress)
    report.policy = policy.to_dict()
    return emit_report(report, fmt, fail_on=fail_on, verbose=verbose, quiet=quiet, output=output)
