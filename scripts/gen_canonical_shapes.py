"""Regenerate ``src/convnextpose_audit/canonical_shapes.json`` from ``model.py`` (needs torch).

For every built-in registry variant, build the model with ``model.build_model``
and record its ``state_dict()`` key -> shape, in the model's key order, with the
element counts. The audit matches a checkpoint to a variant only when its keys
and shapes are exactly these (up to the differences ``variants.toml``
``[matching]`` documents). ``tests/test_canonical_shapes.py`` reruns this and
fails when the committed file differs, so the data cannot drift from the model.

    python scripts/gen_canonical_shapes.py            # rewrite the file
    python scripts/gen_canonical_shapes.py --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "convnextpose_audit" / "canonical_shapes.json"
ABOUT = ("Canonical state-dict keys and shapes of each built-in variant, generated from model.py by "
         "scripts/gen_canonical_shapes.py; do not edit by hand. A checkpoint matches a variant only when its "
         "keys and shapes are exactly these, up to the wrapper prefixes and optional buffers listed with their "
         "reasons in variants.toml [matching] (e.g. num_batches_tracked, which torch < 0.4.1 did not save).")


def generate() -> str:
    """The file's text: deterministic, one key per line so that a change reads as a small diff."""
    from convnextpose_audit.fingerprint import BUFFER_SUFFIXES
    from convnextpose_audit.model import build_model
    from convnextpose_audit.variants import load_registry

    registry = load_registry()
    blocks = []
    for variant in registry.variants:
        sd = build_model(variant).state_dict()
        params = sum(t.numel() for k, t in sd.items() if not k.endswith(BUFFER_SUFFIXES))
        elements = sum(t.numel() for t in sd.values())
        keys = ",\n".join(f"      {json.dumps(k)}: {json.dumps(list(t.shape))}" for k, t in sd.items())
        blocks.append(f'    {json.dumps(variant.name)}: {{\n      "params": {params},\n      "elements": {elements},\n'
                      f'      "tensors": {len(sd)},\n      "keys": {{\n{_indent(keys)}\n      }}\n    }}')
    tolerated = {"wrapper_prefixes": registry.matching.wrapper_prefixes,
                 "optional_buffers": registry.matching.optional_buffers}
    return ('{\n  "schema": 1,\n  "about": ' + json.dumps(ABOUT, ensure_ascii=False) + ',\n'
            '  "source": "src/convnextpose_audit/model.py (the layout of the official ConvNeXtPose code)",\n'
            '  "tolerated (copied from variants.toml [matching])": '
            + _indent(json.dumps(tolerated, indent=2, ensure_ascii=False)).lstrip() + ',\n'
            '  "variants": {\n' + ",\n".join(blocks) + "\n  }\n}\n")


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def main(argv: list[str]) -> int:
    text = generate()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date; run python scripts/gen_canonical_shapes.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
