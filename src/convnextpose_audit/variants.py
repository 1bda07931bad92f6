"""The variant registry (data in ``variants.toml`` and ``canonical_shapes.json``) and matching.

A variant matches a state dict only when every feature it lists equals the
fingerprint's and, for variants with canonical shapes, the state dict's keys and
shapes are exactly the canonical ones, up to the differences the registry's
``[matching]`` section documents. Pure: no output, no exit.
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .errors import RegistryError
from .fingerprint import DEFAULT_JOINTS, WRAPPER_PREFIXES, Fingerprint
from .plain import Plain

#: Features a variant may specify, in the order evidence narrows the candidates.
FEATURES = ("stem_width", "dims", "depths", "block_norm", "block_kernel", "head_widths", "head_kernel",
            "joints", "depth_bins")
_INT_FEATURES = ("stem_width", "block_kernel", "head_kernel", "joints", "depth_bins")
_COUNTS = ("params", "buffers", "total")
_NAMES = {"stem_width": "stem width", "dims": "dims", "depths": "depths", "block_norm": "block norm",
          "block_kernel": "block kernel", "head_widths": "head widths", "head_kernel": "head kernel",
          "joints": "joints", "depth_bins": "depth bins"}
#: How many differing keys evidence and ``differences`` name (the report stays bounded).
FIRST_KEYS = 5


@dataclass(frozen=True)
class Variant:
    """One registry entry: its identity, the features it requires and where they come from."""

    family: str
    label: str
    features: dict[str, Any]
    counts: dict[str, int] = field(default_factory=dict)
    description: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    #: True for built-in entries, whose canonical keys and shapes are in canonical_shapes.json
    canonical: bool = False

    @property
    def name(self) -> str:
        """``family-label``, e.g. ``ConvNeXtPose-L``."""
        return f"{self.family}-{self.label}"


class Difference(Plain):
    """One way a state dict and a variant disagree.

    ``feature`` is a registry feature (``head_widths`` ...), ``"key"`` for one
    state-dict key (``key`` names it; ``found``/``expected`` are shapes, None when
    the key is absent on that side), ``"elements"`` for the element totals, or
    ``"prefix"`` for keys under a prefix that is not a documented wrapper.
    """

    __slots__ = ("feature", "found", "expected", "key")

    def __init__(self, feature: str, found: Any, expected: Any, key: str | None = None):
        self.feature = feature
        self.found = found
        self.expected = expected
        self.key = key

    def __str__(self) -> str:
        if self.feature == "key":
            key = short(self.key or "")
            if self.found is None:
                return f"missing {key} {list(self.expected)}"
            if self.expected is None:
                return f"unexpected {key} {list(self.found)}"
            return f"{key} {list(self.found)} vs {list(self.expected)}"
        if self.feature == "elements":
            return f"elements {self.found:,} vs {self.expected:,}"
        if self.feature == "prefix":
            return f"keys under {self.found!r}, not a documented wrapper prefix ({self.expected})"
        return f"{_NAMES.get(self.feature, self.feature)} {_fmt(self.found)} vs {_fmt(self.expected)}"


class ShapeCheck(Plain):
    """A state dict's keys and shapes against one variant's canonical ones."""

    __slots__ = (
        "variant", "expected_keys", "elements", "expected_elements", "missing", "unexpected", "mismatched",
        "absent_optional", "variant_keys",
    )

    def __init__(self, variant: "Variant", expected_keys: int, elements: int, expected_elements: int,
                 missing: tuple[tuple[str, tuple], ...] = (), unexpected: tuple[tuple[str, tuple], ...] = (),
                 mismatched: tuple[tuple[str, tuple, tuple], ...] = (), absent_optional: tuple[str, ...] = (),
                 variant_keys: tuple[str, ...] = ()):
        self.variant = variant
        self.expected_keys = expected_keys  # canonical keys, optional buffers included
        self.elements = elements  # elements in the state dict checked
        self.expected_elements = expected_elements  # the variant's elements, less optional buffers that are absent
        self.missing = missing  # (key, canonical shape), canonical order
        self.unexpected = unexpected  # (key, shape found), file order
        self.mismatched = mismatched  # (key, found, canonical), canonical order
        self.absent_optional = absent_optional  # optional buffers absent, all of them (tolerated)
        self.variant_keys = variant_keys  # canonical key order, for naming the first differences

    @property
    def count(self) -> int:
        """Number of differing keys (0 for an exact match)."""
        return len(self.missing) + len(self.unexpected) + len(self.mismatched)

    @property
    def exact(self) -> bool:
        """Every key and every shape agree (tolerated differences aside)."""
        return self.count == 0

    def summary(self) -> str:
        """``18 of 260 keys with other shapes``, ``260 of 260 keys missing, 260 unexpected``."""
        parts = [f"{len(self.mismatched)} with other shapes" if self.mismatched else "",
                 f"{len(self.missing)} missing" if self.missing else "",
                 f"{len(self.unexpected)} unexpected" if self.unexpected else ""]
        parts = [p for p in parts if p]
        if not parts:
            return f"all {self.expected_keys} keys agree"
        n, what = parts[0].split(" ", 1)
        return ", ".join([f"{n} of {self.expected_keys} keys {what}", *parts[1:]])

    def differences(self, n: int = FIRST_KEYS) -> tuple[Difference, ...]:
        """The first ``n`` differing keys: canonical order (missing or reshaped), then unexpected keys."""
        order = {k: i for i, k in enumerate(self.variant_keys)}
        known = sorted([(order[k], Difference("key", None, tuple(s), k)) for k, s in self.missing]
                       + [(order[k], Difference("key", tuple(f), tuple(e), k)) for k, f, e in self.mismatched],
                       key=lambda t: t[0])
        out = [d for _, d in known] + [Difference("key", tuple(s), None, k) for k, s in self.unexpected]
        return tuple(out[:n])


class Match(Plain):
    """Outcome of matching: the matching variant (or None), the nearest one and how it differs.

    ``shapes`` is the key-and-shape check against ``variant`` (or, for a near miss,
    ``nearest``); None when that variant has no canonical shapes. ``also`` lists
    other variants that match exactly too (only possible with extra registry entries).
    """

    __slots__ = ("variant", "nearest", "differences", "evidence", "shapes", "also")

    def __init__(self, variant: Variant | None, nearest: Variant | None, differences: tuple[Difference, ...],
                 evidence: tuple[str, ...], shapes: ShapeCheck | None = None, also: tuple[Variant, ...] = ()):
        self.variant = variant
        self.nearest = nearest
        self.differences = differences
        self.evidence = evidence
        self.shapes = shapes
        self.also = also


class Matching(Plain):
    """Differences from the canonical keys that still count as a match, each with its reason."""

    __slots__ = ("wrapper_prefixes", "optional_buffers")

    def __init__(self, wrapper_prefixes: dict[str, str] | None = None, optional_buffers: dict[str, str] | None = None):
        self.wrapper_prefixes = dict.fromkeys(WRAPPER_PREFIXES, "") if wrapper_prefixes is None else wrapper_prefixes
        self.optional_buffers = {} if optional_buffers is None else optional_buffers


@dataclass(frozen=True)
class Registry:
    """An ordered set of variants plus the sources their provenance refers to."""

    variants: tuple[Variant, ...]
    sources: dict[str, str]
    matching: Matching = field(default_factory=Matching)

    @property
    def wrapper_prefixes(self) -> tuple[str, ...]:
        """Documented wrapper prefixes, stripped in front of the backbone's keys."""
        return tuple(self.matching.wrapper_prefixes)

    def canonical(self, variant: Variant) -> dict[str, tuple] | None:
        """The variant's canonical key -> shape (model order), or None if it has none."""
        if not variant.canonical:
            return None
        return canonical_shapes(variant.name)

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
        return Registry(kept + other.variants, {**self.sources, **other.sources}, self.matching)


def short(name: str, limit: int = 120) -> str:
    """A key name for evidence text: a file can hold megabyte-long keys, a report line should not."""
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return "none" if value is None else str(value)


def parse_registry(text: str, origin: str, *, builtin: bool = False) -> Registry:
    """Parse registry TOML; raise :class:`RegistryError` naming ``origin`` on any problem.

    ``builtin`` marks the entries as having canonical shapes (the built-in file only).
    """
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
                      type(v) is int if f in _INT_FEATURES else
                      isinstance(v, list) and all(type(x) is int for x in v))
                if not ok:
                    raise RegistryError(f"{origin}: variant {e['label']!r}: {f} has the wrong type")
                features[f] = tuple(v) if isinstance(v, list) else v
        if not features:
            raise RegistryError(f"{origin}: variant {e['label']!r} specifies no feature")
        counts = {c: e[c] for c in _COUNTS if type(e.get(c)) is int}
        prov = e.get("provenance", {})
        out.append(Variant(e["family"], e["label"], features, counts, str(e.get("description", "")),
                           {str(k): str(v) for k, v in prov.items()} if isinstance(prov, dict) else {},
                           canonical=builtin))
    sources = data.get("sources", {})
    sources = {str(k): str(v) for k, v in sources.items()} if isinstance(sources, dict) else {}
    return Registry(tuple(out), sources, _matching(data.get("matching"), origin) if builtin else Matching())


def _matching(section: Any, origin: str) -> Matching:
    if not isinstance(section, dict):
        raise RegistryError(f"{origin}: no [matching] section")
    tables = {}
    for name in ("wrapper_prefixes", "optional_buffers"):
        table = section.get(name, {})
        if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
            raise RegistryError(f"{origin}: [matching.{name}] must map names to their reasons")
        tables[name] = dict(table)
    return Matching(**tables)


_CANONICAL: dict[str, Any] = {}


def canonical_shapes(name: str) -> dict[str, tuple]:
    """Canonical key -> shape of the built-in variant ``name`` (``ConvNeXtPose-L``), read once."""
    if not _CANONICAL:
        path = os.path.join(os.path.dirname(__file__), "canonical_shapes.json")
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, ValueError) as exc:
            # A broken installation, not a usage error: it surfaces as an internal error (exit 70).
            raise RuntimeError(f"{path}: cannot read the canonical shapes ({exc}); reinstall cnxp-audit") from None
        _CANONICAL.update(data["variants"])
    entry = _CANONICAL.get(name)
    if entry is None:
        raise RuntimeError(f"canonical_shapes.json has no entry for {name}; "
                           "run python scripts/gen_canonical_shapes.py")
    if "_shapes" not in entry:
        entry["_shapes"] = {k: tuple(v) for k, v in entry["keys"].items()}
    return entry["_shapes"]


def load_registry(extra_path: str | None = None) -> Registry:
    """The built-in registry, merged with the entries of ``extra_path`` if given."""
    # Read beside this module rather than through importlib.resources, which costs ~10 ms of imports.
    with open(os.path.join(os.path.dirname(__file__), "variants.toml"), encoding="utf-8") as fh:
        text = fh.read()
    registry = parse_registry(text, "built-in variants.toml", builtin=True)
    if extra_path:
        try:
            with open(extra_path, encoding="utf-8") as fh:
                extra = fh.read(10 * 1024 * 1024)
        except OSError as exc:
            raise RegistryError(f"{extra_path}: cannot read variants file ({exc.strerror or exc})") from None
        registry = registry.merged(parse_registry(extra, extra_path))
    return registry




def diff(fp: Fingerprint, variant: Variant) -> tuple[Difference, ...]:
    """Features that ``variant`` specifies and ``fp`` does not have."""
    return tuple(Difference(f, getattr(fp, f), v) for f, v in variant.features.items() if getattr(fp, f) != v)


def numel(shape: tuple) -> int:
    """Elements of a tensor of ``shape`` (1 for a scalar)."""
    return math.prod(int(d) for d in shape)


def check_shapes(shapes: dict[str, tuple], variant: Variant, registry: Registry) -> ShapeCheck | None:
    """Compare ``shapes`` (key -> shape, wrapper prefix already stripped) with the variant's canonical
    keys; None when the variant has none. Optional buffers may be absent, all together."""
    canonical = registry.canonical(variant)
    if canonical is None:
        return None
    optional = tuple(f".{b}" for b in registry.matching.optional_buffers)
    opt_keys = [k for k in canonical if k.endswith(optional)] if optional else []
    absent_opt = tuple(k for k in opt_keys if k not in shapes)
    opt_set = set(opt_keys)
    # All or none, as a torch version saves them; and only beside the full set of other keys (a state
    # dict missing everything is not an old-torch one).
    complete = all(k in shapes for k in canonical if k not in opt_set)
    tolerated = absent_opt if len(absent_opt) == len(opt_keys) and complete else ()
    tolerated_set = set(tolerated)
    missing = tuple((k, s) for k, s in canonical.items() if k not in shapes and k not in tolerated_set)
    mismatched = tuple((k, tuple(shapes[k]), s) for k, s in canonical.items()
                       if k in shapes and tuple(shapes[k]) != s)
    unexpected = tuple((k, tuple(s)) for k, s in shapes.items() if k not in canonical)
    expected_elements = sum(numel(s) for k, s in canonical.items() if k not in tolerated_set)
    return ShapeCheck(variant, len(canonical), sum(numel(s) for s in shapes.values()), expected_elements,
                      missing, unexpected, mismatched, tolerated, tuple(canonical))


def match(fp: Fingerprint, registry: Registry, shapes: dict[str, tuple] | None = None) -> Match:
    """Find the variant whose every feature and (where it has them) every canonical key and shape
    agree with the state dict; explain the narrowing.

    Evidence starts at the stem (first downsample layer) and narrows the
    candidates feature by feature, so a reader sees why, e.g., a 48-wide stem
    still leaves S, M and L open; then the full key-and-shape comparison decides.
    ``shapes`` is the state dict's key -> shape as a loader sees it; without it
    (or for a variant without canonical shapes) the features alone decide.
    """
    evidence: list[str] = []
    if fp.state_dict_key is None:
        evidence.append("no state dict found (no dict of tensors at the top level or under "
                        "network/state_dict/model/ema)")
    else:
        where = f"'{fp.state_dict_key}'" if fp.state_dict_key else "the top level"
        note = f", '{fp.prefix}' prefix stripped" if fp.prefix else ""
        evidence.append(f"state dict at {where}: {fp.tensor_count} tensors{note}")
    if not fp.is_convnext:
        evidence.append(f"no ConvNeXt backbone keys (backbone.downsample_layers.0.0.weight, backbone.stages.*): "
                        f"{fp.tensor_count} tensors, {fp.elements:,} elements")
        return Match(None, None, (), tuple(evidence))

    evidence.extend(_narrowing(fp, registry))
    checks: dict[str, ShapeCheck | None] = {}

    def check_of(v: Variant) -> ShapeCheck | None:  # compared only where the ranking needs it
        if shapes is None:
            return None
        if v.name not in checks:
            checks[v.name] = check_shapes(shapes, v, registry)
        return checks[v.name]

    feature_diffs = {v.name: len(diff(fp, v)) for v in registry.variants}

    def fits(v: Variant) -> bool:
        check = check_of(v) if feature_diffs[v.name] == 0 else None
        return feature_diffs[v.name] == 0 and (check is None or check.exact)

    fewest = min(feature_diffs.values(), default=0)

    def distance(iv: tuple[int, Variant]) -> tuple:
        i, v = iv
        if feature_diffs[v.name] > fewest:
            return feature_diffs[v.name], 0, 0, i
        check = check_of(v)
        expected = check.expected_elements if check else v.counts.get("total", fp.elements)
        return feature_diffs[v.name], check.count if check else 0, abs(fp.elements - expected), i

    exact = [v for v in registry.variants if fits(v)]
    if exact:
        v = exact[0]
        evidence.append(_shape_line(v, check_of(v), shapes is not None))
        if len(exact) > 1:
            evidence.append("also fits " + ", ".join(o.label for o in exact[1:]) + " exactly")
        evidence.extend(_count_evidence(fp, v, check_of(v)))
        return Match(v, v, (), tuple(evidence), check_of(v), tuple(exact[1:]))
    nearest = min(enumerate(registry.variants), key=distance)[1] if registry.variants else None
    if nearest is None:
        return Match(None, None, (), tuple(evidence))
    check = check_of(nearest)
    differences = differences_from(fp, nearest, check)
    if check is not None and not check.exact:
        evidence.append(f"keys and shapes against {nearest.label} (nearest): {check.summary()}: "
                        + "; ".join(str(d) for d in check.differences(3)) + (" …" if check.count > 3 else ""))
    features = diff(fp, nearest)
    if features:
        evidence.append(f"nearest: {nearest.label}, differing in " + "; ".join(str(d) for d in features))
    elif check is not None and not check.exact:
        evidence.append(f"nearest: {nearest.label}; every feature agrees, the keys and shapes do not")
    evidence.extend(_count_evidence(fp, nearest, check))
    return Match(None, nearest, differences, tuple(evidence), check)


def differences_from(fp: Fingerprint, variant: Variant, check: ShapeCheck | None, *,
                     keys: bool = True) -> tuple[Difference, ...]:
    """How the state dict differs from ``variant``: features, then (with ``keys``) the first differing
    keys, then the element totals."""
    out = list(diff(fp, variant))
    if check is not None and not check.exact:
        if keys:
            out.extend(check.differences())
        if check.elements != check.expected_elements:
            out.append(Difference("elements", check.elements, check.expected_elements))
    return tuple(out)


_GROUPS = (("stem_width",), ("dims", "depths"), ("block_norm",), ("block_kernel",), ("head_widths",),
           ("head_kernel",), ("joints", "depth_bins"))
#: Groups whose line is left out when they rule nothing out (every variant has 7×7 blocks...).
_QUIET = {("block_norm",), ("block_kernel",), ("head_kernel",)}


def _narrowing(fp: Fingerprint, registry: Registry) -> list[str]:
    evidence = []
    candidates = list(registry.variants)
    for group in _GROUPS:
        left = [v for v in candidates if all(v.features.get(f, getattr(fp, f)) == getattr(fp, f) for f in group)]
        if left == candidates and group in _QUIET:
            continue
        shared = " (one backbone shared by all of them)" if group == ("dims", "depths") and len(left) > 1 else ""
        evidence.append(f"{_clue(fp, group)} → {_names(left)}{shared}")
        candidates = left
        if not candidates:
            break
    return evidence


def _shape_line(v: Variant, check: ShapeCheck | None, had_shapes: bool) -> str:
    if check is None:
        why = "no canonical shapes in the registry" if had_shapes else "keys and shapes not compared"
        return f"{v.label}: {why}; matched on its features only"
    line = f"all {check.expected_keys - len(check.absent_optional)} keys and shapes agree with {v.label}"
    if check.absent_optional:
        line += (f" ({len(check.absent_optional)} num_batches_tracked-style optional buffers absent, as torch "
                 "versions before they existed saved them; tolerated)")
    return line


def _clue(fp: Fingerprint, group: tuple[str, ...]) -> str:
    feature = group[0]
    if feature == "dims":
        return f"backbone dims {_fmt(fp.dims)}, depths {_fmt(fp.depths)}"
    if feature == "stem_width":
        return f"stem downsample_layers.0.0.weight {list(fp.stem_shape or ())} → stem width {fp.stem_width}"
    if feature == "joints":
        return final_layer_text(fp)
    if feature == "block_norm":
        return {"batchnorm": "BatchNorm blocks", "layernorm": "LayerNorm+Linear blocks (original ConvNeXt)"}.get(
            fp.block_norm or "", "no recognisable block norm")
    if feature in ("block_kernel", "head_kernel"):
        k = getattr(fp, feature)
        return f"{_NAMES[feature]} {k}×{k}" if k is not None else f"no {_NAMES[feature]}"
    return f"{_NAMES[feature]} {_fmt(getattr(fp, feature))}"


def final_layer_text(fp: Fingerprint) -> str:
    """``final_layer 1152 = 18 × 64 (assumed 18 joints), also 16 × 72 or 24 × 48``: the split, and
    whether it is an assumption (another known joint count divides the channels too)."""
    if fp.final_out is None:
        return "no head.final_layer"
    if fp.joints is None:
        return f"final_layer {fp.final_out} channels (no known joint count divides it)"
    if not fp.joints_alternatives:
        return f"final_layer {fp.final_out} = {fp.joints} joints × {fp.depth_bins} depth bins"
    others = [f"{j} × {b}" for j, b in fp.joints_alternatives]
    also = others[0] if len(others) == 1 else ", ".join(others[:-1]) + " or " + others[-1]
    return f"final_layer {fp.final_out} = {fp.joints} × {fp.depth_bins} (assumed {fp.joints} joints), also {also}"


def _names(variants: list[Variant]) -> str:
    if not variants:
        return "no variant"
    labels = [v.label for v in variants]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _count_evidence(fp: Fingerprint, v: Variant, check: ShapeCheck | None) -> list[str]:
    total = check.expected_elements if check is not None else v.counts.get("total")
    if total is None:
        return []
    agree = "=" if fp.elements == total else "≠"
    sources = "; ".join(v.provenance[k] for k in ("params", "total") if k in v.provenance)
    return [f"{fp.elements:,} state-dict elements {agree} {v.label}'s {total:,} "
            f"({fp.params / 1e6:.2f} M params{'; ' + sources if sources else ''})"]
