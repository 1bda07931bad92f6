"""The Python API for loading code: check a checkpoint's variant, or load it into the real model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .audit import AuditOptions, AuditResult, Labels, Verdict, audit_checkpoint
from .convert import weights
from .errors import VariantMismatchError
from .reader import Limits, open_checkpoint
from .variants import Registry, load_registry


def check(path: str | os.PathLike, expect: str | None = None, *, registry: Registry | None = None,
          limits: Limits | None = None) -> AuditResult:
    """Audit ``path``; with ``expect`` ("XS", "S", "M", "L"), raise unless the architecture is that variant.

    Raises :class:`VariantMismatchError` (message: declared and found variant and
    the differing features), or the reader's typed errors for unreadable or
    unsafe files. Without ``expect`` the label from the file name is judged but
    never raised on.
    """
    registry = registry or load_registry()
    labels = Labels(forced=registry.get(expect).label) if expect else Labels()
    with open_checkpoint(path, limits=limits) as ckpt:
        result = audit_checkpoint(ckpt, registry, labels, AuditOptions(limits=limits))
    if expect and result.verdict is not Verdict.MATCH:
        found = result.inferred or f"no known variant (nearest {result.nearest or 'none'})"
        detail = "; ".join(str(d) for d in result.differences) or "architecture not recognised"
        raise VariantMismatchError(f"{os.fspath(path)}: expected ConvNeXtPose-{result.declared}, found {found}: "
                                   f"{detail}", result=result)
    return result


@dataclass
class Fit:
    """The outcome of fitting a checkpoint into the ConvNeXtPose model (see :func:`fit_model`)."""

    result: AuditResult
    label: str | None  #: the variant built (given or inferred); None if none could be chosen
    model: Any = None  #: the model in eval mode, when the strict load succeeded
    error: str | None = None  #: why there is no model: torch's strict-load text, or no variant


def fit_model(path: str | os.PathLike, variant: str | None = None, *, registry: Registry | None = None) -> Fit:
    """Open ``path`` once, infer its variant, build that (or ``variant``'s) model and load the
    weights with ``strict=True``. Needs the ``torch`` extra; raises the reader's typed errors."""
    from .model import build_model, load_state_dict_strict

    registry = registry or load_registry()
    with open_checkpoint(path) as ckpt:
        result = audit_checkpoint(ckpt, registry, Labels(), AuditOptions())
        label = registry.get(variant).label if variant else result.inferred
        if label is None:
            return Fit(result, None, error=f"cannot infer the variant (nearest {result.nearest or 'none'})")
        model = build_model(registry.get(label))
        state = {k: t.torch() for k, t in weights(ckpt).items()}
    error = load_state_dict_strict(model, state)
    return Fit(result, label, None if error else model.eval(), error)


def load_model(path: str | os.PathLike, variant: str | None = None, *, registry: Registry | None = None):
    """Build the ConvNeXtPose model of ``variant`` (or the inferred one), load the weights with
    ``strict=True`` and return it in eval mode. Needs the ``torch`` extra.

    Raises :class:`VariantMismatchError` if the variant cannot be inferred, or if
    the strict load fails (the message carries torch's list of bad keys).
    """
    fit = fit_model(path, variant, registry=registry)
    if fit.label is None:
        raise VariantMismatchError(f"{os.fspath(path)}: {fit.error}; pass variant=...", result=fit.result)
    if fit.error:
        raise VariantMismatchError(f"{os.fspath(path)}: does not load into ConvNeXtPose-{fit.label}: "
                                   + " ".join(fit.error.split()), result=fit.result)
    return fit.model
