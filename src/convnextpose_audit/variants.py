"""The variant registry (data in ``variants.toml``) and matching a fingerprint against it."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import RegistryError
from .fingerprint import DEFAULT_JOINTS, Fingerprint

#: Features a variant may specify, in the order evidence narrows the candidates.
FEATURES = ("stem_width", "dims", "depths", "block_norm", "head_widths", "joints", "depth_bins")
_COUNTS = ("params", "buffers", "total")
_NAMES = {"stem_width": "stem width", "dims": "dims", "depths": "depths", "block_norm": "block norm",
          "head_widths": "head widths", "joints": "joints", "depth_bins": "depth bins"}


@dataclass(frozen=True)
class Variant:
    """One registry entry: its identity, the features it requires and where they come from."""

    family: str
    label: str
    features: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    description: str = ""
    provenance: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``family-label``, e.g. ``ConvNeXtPose-L``."""
        return f"{self.family}-{self.label}"


@dataclass(frozen=True)
class Difference:
    """One feature where a fingerprint and a variant disagree."""

    feature: str
    found: Any
    expected: Any

    def __str__(self) -> str:
        return f"{_NAMES.get(self.feature, self.feature)} {_fmt(self.found)} vs {_fmt(self.expected)}"


@dataclass(frozen=True)
class Match:
    """Outcome of matching: the matching variant (or None), the nearest one and how it differs."""

    variant: Variant | None
    nearest: Variant | None
    differences: tuple[Difference, ...]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Registry:
    """An ordered set of variants plus the sources their provenance refers to."""

    variants: tuple[Variant, ...]
    sources: dict[str, str]

    def labels(self) -> list[str]:
        """Every label, longest first (so ``XS`` is tried before ``S``)."""
        return sorted({v.label for v in self.variants}, key=lambda s: (-len(s), s))

    def families(self) -> list[str]:
        """Every family name, in registry order."""
        return list(dict.fromkeys(v.family for v in self.variants))

    def joints_hints(self) -> tuple[int, ...]:
        """Joint counts the registry knows, then common ones, for splitting final_layer channels."""
        known = [v.features["joints"] for v in self.variants if "joints" in v.features]
        return tuple(dict.fromkeys([*known, *DEFAULT_JOINTS]))

    def get(self, label: str) -> Variant:
        """The variant with ``label`` (case-insensitive), or :class:`RegistryError`."""
        for v in self.variants:
            if v.label.lower() == label.lower():
                return v
        raise RegistryError(f"no variant labelled {label!r} (known: {', '.join(self.labels())})")

    def merged(self, other: "Registry") -> "Registry":
        """This registry with ``other``'s entries added; same family and label replaces."""
        replaced = {(v.family, v.label) for v in other.variants}
        kept = tuple(v for v in self.variants if (v.family, v.label) not in replaced)
        return Registry(kept + other.variants, {**self.sources, **other.sources})


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def parse_registry(text: str, origin: str) -> Registry:
    """Parse registry TOML; raise :class:`RegistryError` naming ``origin`` on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{origin}: not valid TOML ({exc})") from None
    entries = data.get("variant", [])
    if not isinstance(entries, list) or not entries:
        raise RegistryError(f"{origin}: no [[variant]] entries")
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not isinstance(e.get("label"), str) or not isinstance(e.get("family"), str):
            raise RegistryError(f"{origin}: variant #{i + 1} needs a string family and label")
        features = {}
        for f in FEATURES:
            if f in e:
                v = e[f]
                ok = (isinstance(v, str) if f == "block_norm" else
                      type(v) is int if f in ("stem_width", "joints", "depth_bins") else
                      isinstance(v, list) and all(type(x) is int for x in v))
                if not ok:
                    raise RegistryError(f"{origin}: variant {e['label']!r}: {f} has the wrong type")
                features[f] = tuple(v) if isinstance(v, list) else v
        if not features:
            raise RegistryError(f"{origin}: variant {e['label']!r} specifies no feature")
        counts = {c: e[c] for c in _COUNTS if type(e.get(c)) is int}
        prov = e.get("provenance", {})
        out.append(Variant(e["family"], e["label"], features, counts, str(e.get("description", "")),
                           {str(k): str(v) for k, v in prov.items()} if isinstance(prov, dict) else {}))
    sources = data.get("sources", {})
    return Registry(tuple(out), {str(k): str(v) for k, v in sources.items()} if isinstance(sources, dict) else {})


def load_registry(extra_path: str | None = None) -> Registry:
    """The built-in registry, merged with the entries of ``extra_path`` if given."""
    # Read beside this module rather than through importlib.resources, which costs ~10 ms of imports.
    with open(os.path.join(os.path.dirname(__file__), "variants.toml"), encoding="utf-8") as fh:
        text = fh.read()
    registry = parse_registry(text, "built-in variants.toml")
    if extra_path:
        try:
            with open(extra_path, encoding="utf-8") as fh:
                extra = fh.read(10 * 1024 * 1024)
        except OSError as exc:
            raise RegistryError(f"{extra_path}: cannot read variants file ({exc.strerror or exc})") from None
        registry = registry.merged(parse_registry(extra, extra_path))
    return registry


def _value(fp: Fingerprint, feature: str) -> Any:
    return getattr(fp, feature)


def diff(fp: Fingerprint, variant: Variant) -> tuple[Difference, ...]:
    """Features that ``variant`` specifies and ``fp`` does not have."""
    return tuple(Difference(f, _value(fp, f), v) for f, v in variant.features.items() if _value(fp, f) != v)


def match(fp: Fingerprint, registry: Registry) -> Match:
    """Find the variant whose every feature equals the fingerprint's; explain the narrowing.

    Evidence starts at the stem (first downsample layer) and narrows the
    candidates feature by feature, so a reader sees why, e.g., a 48-wide stem
    still leaves S, M and L open.
    """
    evidence: list[str] = []
    if fp.state_dict_key is None:
        evidence.append("no state dict found (no dict of tensors at the top level or under "
                        "network/state_dict/model/ema)")
    else:
        where = f"'{fp.state_dict_key}'" if fp.state_dict_key else "the top level"
        note = f", '{fp.prefix}' prefix stripped" if fp.prefix else ""
        evidence.append(f"state dict at {where}: {fp.tensor_count} tensors{note}")
    # Nearest: fewest differing features, then the closest state-dict size, then registry order.
    scored = sorted(((len(diff(fp, v)), abs(fp.total - v.counts.get("total", fp.total)), i, v)
                     for i, v in enumerate(registry.variants)), key=lambda t: t[:3])
    best = scored[0][3] if scored else None
    exact = best if scored and scored[0][0] == 0 else None

    if not fp.is_convnext:
        evidence.append(f"no ConvNeXt backbone keys (backbone.downsample_layers.0.0.weight, backbone.stages.*): "
                        f"{fp.tensor_count} tensors, {fp.total:,} elements")
        return Match(None, None, (), tuple(evidence))

    candidates = list(registry.variants)
    for group in _GROUPS:
        left = [v for v in candidates if all(v.features.get(f, _value(fp, f)) == _value(fp, f) for f in group)]
        if left == candidates and group == ("block_norm",):
            continue
        shared = " (one backbone shared by all of them)" if group == ("dims", "depths") and len(left) > 1 else ""
        evidence.append(f"{_clue(fp, group)} → {_names(left)}{shared}")
        candidates = left
        if not candidates:
            break
    if exact is not None:
        evidence.extend(_count_evidence(fp, exact, registry))
        return Match(exact, exact, (), tuple(evidence))
    differences = diff(fp, best) if best else ()
    if best is not None:
        evidence.append(f"nearest: {best.label}, differing in " + "; ".join(str(d) for d in differences))
    return Match(None, best, differences, tuple(evidence))


_GROUPS = (("stem_width",), ("dims", "depths"), ("block_norm",), ("head_widths",), ("joints", "depth_bins"))


def _clue(fp: Fingerprint, group: tuple[str, ...]) -> str:
    feature = group[0]
    if feature == "dims":
        return f"backbone dims {_fmt(fp.dims)}, depths {_fmt(fp.depths)}"
    if feature == "stem_width":
        return f"stem downsample_layers.0.0.weight {list(fp.stem_shape or ())} → stem width {fp.stem_width}"
    if feature == "joints":
        if fp.final_out is None:
            return "no head.final_layer"
        if fp.joints is None:
            return f"final_layer {fp.final_out} channels (no known joint count divides it)"
        return f"final_layer {fp.final_out} = {fp.joints} joints × {fp.depth_bins} depth bins"
    if feature == "block_norm":
        return {"batchnorm": "BatchNorm blocks", "layernorm": "LayerNorm+Linear blocks (original ConvNeXt)"}.get(
            fp.block_norm or "", "no recognisable block norm")
    return f"{_NAMES[feature]} {_fmt(_value(fp, feature))}"


def _names(variants: list[Variant]) -> str:
    if not variants:
        return "no variant"
    labels = [v.label for v in variants]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _count_evidence(fp: Fingerprint, v: Variant, registry: Registry) -> list[str]:
    total = v.counts.get("total")
    if total is None:
        return []
    agree = "=" if fp.total == total else "≠"
    sources = "; ".join(v.provenance[k] for k in ("params", "total") if k in v.provenance)
    return [f"{fp.total:,} state-dict elements {agree} {v.label}'s {total:,} "
            f"({fp.params / 1e6:.2f} M learnable{'; ' + sources if sources else ''})"]
