"""Declared labels: what a file's name (or the user) claims it is. Never used as evidence."""

from __future__ import annotations

import json
import os
import re

from .errors import AuditError, ManifestError
from .variants import Registry

_DRIVE_COPY = re.compile(r"\s*\(\d+\)(?=\.[^.]*$|$)")


def display_basename(name: str) -> str:
    """The last path component of ``name``, looking inside ``outer.zip!inner`` names."""
    inner = name.rsplit("!", 1)[-1].rstrip("/")
    return inner.replace("\\", "/").rsplit("/", 1)[-1]


def label_from_name(name: str, registry: Registry) -> str | None:
    """The label a file name declares (``ConvNeXtPose_L (1).tar`` -> ``L``), or None.

    Case-insensitive; Drive's `` (1)`` copy suffix is ignored; the label must be
    a whole token after the family name (``_``, ``-``, space or nothing between).
    """
    base = _DRIVE_COPY.sub("", display_basename(name))
    labels = "|".join(re.escape(label) for label in registry.labels())
    for family in registry.families():
        m = re.search(rf"{re.escape(family)}[\s_\-]*({labels})(?![A-Za-z0-9])", base, re.IGNORECASE)
        if m:
            return registry.get(m.group(1)).label
    return None


def load_manifest(path: str, registry: Registry) -> dict[str, str]:
    """Read a CSV (``name,label`` rows) or JSON (``{name: label}``) manifest; keys as given."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(10 * 1024 * 1024)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read labels manifest ({exc.strerror or exc})") from None
    pairs: list[tuple[str, str]]
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ManifestError(f"{path}: labels manifest is not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ManifestError(f"{path}: JSON labels manifest must map file names to labels")
        pairs = list(data.items())
    else:
        import csv
        import io

        pairs = [(row[0].strip(), row[1].strip()) for row in csv.reader(io.StringIO(text))
                 if len(row) >= 2 and row[0].strip() and not row[0].startswith("#")]
        if pairs and pairs[0][0].lower() in ("file", "name", "path") and pairs[0][1].lower() == "label":
            pairs = pairs[1:]
    out = {}
    for name, label in pairs:
        try:
            out[name] = registry.get(label).label
        except AuditError:
            raise ManifestError(f"{path}: {name!r} has unknown label {label!r} "
                                f"(known: {', '.join(registry.labels())})") from None
    return out


def manifest_label(name: str, manifest: dict[str, str]) -> str | None:
    """The manifest's label for ``name``: exact path first, then its base name."""
    if name in manifest:
        return manifest[name]
    norm = os.path.normpath(name)
    for key, label in manifest.items():
        if os.path.normpath(key) == norm:
            return label
    return manifest.get(display_basename(name))
