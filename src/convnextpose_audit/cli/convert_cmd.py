"""``cnxp-audit convert SRC OUT``: the weights alone, as safetensors or a weights-only .pth."""

from __future__ import annotations

import click

from ..audit import AuditOptions, Labels, audit_checkpoint
from ..convert import output_format, safetensors_metadata, weights, write_pth, write_safetensors
from ..exitcodes import ExitCode
from ..reader import open_checkpoint
from ..variants import load_registry
from .options import check_output
from .output import info


@click.command("convert")
@click.argument("src", type=click.Path())
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(("safetensors", "pth")),
              help="Output format (default: from OUT's extension; .safetensors or else .pth).")
@click.option("--keep-prefix", is_flag=True, help="Keep wrapper prefixes such as 'module.'.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def command(src, out, to, keep_prefix, force):
    """Write SRC's state dict alone (contiguous tensors, no optimizer, no pickled code) to OUT.

    The file appears atomically: an interrupted run leaves nothing at OUT.
    """
    fmt = output_format(out, to)
    check_output(out, force=force)  # before reading SRC: an existing OUT or a missing folder is a usage error
    if fmt == "pth":
        from ..reader.tensor import import_torch

        import_torch()  # without torch: exit 2 with the install hint, before reading anything
    # Opening refuses unsafe or unreadable sources before anything is written.
    with open_checkpoint(src) as ckpt:
        result = audit_checkpoint(ckpt, load_registry(), Labels(), AuditOptions())
        sd = weights(ckpt, keep_prefix=keep_prefix)
        if fmt == "safetensors":
            write_safetensors(sd, out, safetensors_metadata(ckpt, result), force=force, limits=ckpt.limits)
        else:
            write_pth(sd, out, force=force, limits=ckpt.limits)
    info(f"wrote {len(sd)} tensors to {out} ({fmt}); variant {result.inferred or 'unknown'}")
    return ExitCode.OK
