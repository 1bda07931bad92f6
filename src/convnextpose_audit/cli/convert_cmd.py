"""``cnxp-audit convert SRC OUT``: the weights alone, as safetensors or a weights-only .pth."""

from __future__ import annotations

import click

from ..audit import AuditOptions, Labels, audit_checkpoint
from ..convert import output_format, rescue_metadata, safetensors_metadata, weights, write_pth, write_safetensors
from ..errors import UnsafeCheckpointError
from ..exitcodes import ExitCode
from ..reader import Checkpoint, open_checkpoint
from ..variants import load_registry
from ..policy import build_policy
from .options import check_output, policy_options
from .output import info


@click.command("convert")
@click.argument("src", type=click.Path())
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=click.Choice(("safetensors", "pth")),
              help="Output format (default: from OUT's extension; .safetensors or else .pth).")
@click.option("--keep-prefix", is_flag=True, help="Keep wrapper prefixes such as 'module.'.")
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@click.option("--allow-unsafe-source", "rescue", is_flag=True,
              help="Rescue the weights of a file that references globals outside the allowlist: its tensors, "
                   "found by the inert read (nothing imported or called), go to a clean OUT whose metadata "
                   "names the dropped globals.")
@policy_options
def command(src, out, to, keep_prefix, force, rescue, allow, policy_file):
    """Write SRC's state dict alone (contiguous tensors, no optimizer, no pickled code) to OUT.

    The file appears atomically: an interrupted run leaves nothing at OUT. An unsafe SRC is
    refused (exit 4) unless --allow-unsafe-source asks for its weights alone.
    """
    fmt = output_format(out, to)
    check_output(out, force=force)  # before reading SRC: an existing OUT or a missing folder is a usage error
    if fmt == "pth":
        from ..reader.tensor import import_torch

        import_torch()  # without torch: exit 2 with the install hint, before reading anything
    policy = build_policy(allow, policy_file)
    # Opening refuses unsafe (unless rescuing) or unreadable sources before anything is written.
    with _open_source(src, policy.names, rescue=rescue) as ckpt:
        dropped = sorted({r.qualname for _m, r in ckpt.refused(policy.names)})
        result = audit_checkpoint(ckpt, load_registry(), Labels(), AuditOptions())
        sd = weights(ckpt, keep_prefix=keep_prefix, any_tensors=rescue)
        if fmt == "safetensors":
            meta = {**safetensors_metadata(ckpt, result), **(rescue_metadata(dropped) if dropped else {})}
            write_safetensors(sd, out, meta, force=force, limits=ckpt.limits)
        else:
            write_pth(sd, out, force=force, limits=ckpt.limits)
    info(f"wrote {len(sd)} tensors to {out} ({fmt}); variant {result.inferred or 'unknown'}")
    if dropped:
        info(f"rescued from an unsafe source: dropped {len(dropped)} global(s) ({', '.join(dropped[:5])}"
             f"{' …' if len(dropped) > 5 else ''}); nothing was imported or called")
    return ExitCode.OK


#: What an unsafe source's error adds without --allow-unsafe-source: the flag is named, the risk is not taken.
RESCUE_HINT = ("; `cnxp-audit convert --allow-unsafe-source` writes its tensors to a clean file without running "
               "anything")


def _open_source(src: str, allow: frozenset[str], *, rescue: bool) -> Checkpoint:
    """Open SRC: an unsafe file only when rescuing (its inert reading), else its error names the flag.

    A file whose inert reading fails cannot be rescued: its error says why.
    """
    try:
        return open_checkpoint(src, allow=allow, read_unsafe=rescue)
    except UnsafeCheckpointError as exc:
        if rescue:
            read_error = getattr(exc, "read_error", None)
            message = f"{exc}; its tensors cannot be rescued: {read_error}" if read_error else str(exc)
        else:
            message = f"{exc}{RESCUE_HINT}"
        err = UnsafeCheckpointError(message, module=exc.module, name=exc.name, member=exc.member, globals=exc.globals)
        err.refs = getattr(exc, "refs", [])
        raise err from None
