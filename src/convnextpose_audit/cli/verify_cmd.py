"""``cnxp-audit verify PATH``: strict load into the real model and one forward pass (torch extra)."""

from __future__ import annotations

import json
import os

import click

from ..audit import DEFAULT_FAIL_ON, fails
from ..exitcodes import ExitCode
from .options import build_registry, variants_option
from .output import info, write_output

INSTALL_HINT = "verify needs torch: pip install torch==2.13.0 'convnextpose-audit[torch]'"
SCHEMA_VERSION = 1


@click.command("verify")
@click.argument("path", type=click.Path())
@click.option("--variant", help="Build this variant instead of the inferred one (XS, S, M, L).")
@click.option("--format", "fmt", type=click.Choice(("table", "json")), default="table", show_default=True)
@variants_option
def command(path, variant, fmt, variants_file):
    """Load PATH into the ConvNeXtPose model with strict=True and run a 1×3×256×256 forward pass on CPU.

    The declared label (from the file name) is judged as inspect judges it: the exit code is
    the verdict's (1 for MISMATCH or a labelled UNKNOWN), or 1 when the strict load fails.
    """
    try:
        import torch  # noqa: F401
    except ImportError:
        from .output import error
        error(INSTALL_HINT)
        return ExitCode.USAGE
    from ..api import fit_model
    from ..model import forward_check

    registry = build_registry(variants_file)
    if variant:
        variant = registry.get(variant).label  # an unknown --variant is a usage error, before any reading
    fit = fit_model(path, variant, registry=registry)
    r = fit.result
    outcome: dict = {"schema_version": SCHEMA_VERSION, "path": os.fspath(path), "declared": r.declared,
                     "declared_from": r.declared_from, "inferred": r.inferred, "verdict": r.verdict.value,
                     "reason": r.reason, "variant": fit.label, "loaded": fit.model is not None, "errors": [],
                     "output_shape": None, "forward_seconds": None}
    code = fails(r, DEFAULT_FAIL_ON)
    if fit.model is None:
        hint = "; pass --variant" if fit.label is None else ""
        outcome["errors"] = [line.strip() + hint for line in (fit.error or "").splitlines() if line.strip()]
        return _emit(outcome, fmt, max(code, ExitCode.MISMATCH))
    shape, seconds = forward_check(fit.model)
    outcome["output_shape"], outcome["forward_seconds"] = list(shape), round(seconds, 4)
    return _emit(outcome, fmt, code)


def _emit(outcome: dict, fmt: str, code: ExitCode) -> ExitCode:
    if fmt == "json":
        from ..render.json import tool

        write_output(json.dumps({"schema_version": outcome.pop("schema_version"), "tool": tool(), **outcome,
                                 "exit_code": int(code)}, indent=2) + "\n", None)
        return code
    declared = (f"declared {outcome['declared']} ({outcome['declared_from']})" if outcome["declared"]
                else "no declared label")
    lines = [f"{outcome['path']}: {declared}, inferred {outcome['inferred'] or 'none'} → {outcome['verdict']}"
             + (f" ({outcome['reason']})" if outcome["reason"] and outcome["verdict"] != "MATCH" else ""),
             (f"built ConvNeXtPose-{outcome['variant']}"
              + (" (--variant)" if outcome["variant"] != outcome["inferred"] else "")
              if outcome["variant"] else "no model built: no variant was inferred")]
    if outcome["loaded"]:
        lines.append("strict load: ok (no missing, unexpected or shape-mismatched keys)")
        lines.append(f"forward pass 1×3×256×256 → {tuple(outcome['output_shape'])} in "
                     f"{outcome['forward_seconds'] * 1000:.0f} ms")
    else:
        lines.append("strict load FAILED:")
        lines += [f"  {e}" for e in outcome["errors"]]
    from ..render.escape import safe  # the path and torch's key names come from the file

    write_output("\n".join(safe(line) for line in lines) + "\n", None)
    if not outcome["loaded"]:
        info("the checkpoint does not fit this variant; see the keys above")
    elif code:
        info(f"the weights load, but the label does not hold: {outcome['verdict']}")
    return code
