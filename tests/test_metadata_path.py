"""The metadata path is cheap by construction: no torch, no numpy, almost no bytes read."""

from __future__ import annotations

import os
import subprocess
import sys

from convnextpose_audit import open_checkpoint
from convnextpose_audit.fingerprint import fingerprint


def _imported_modules(code: str, *, tty: bool = False) -> set[str]:
    if tty:  # stdout on a pseudo-terminal, as for a person at a shell
        import pty

        parent, child = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], stdout=child,
                                  stderr=subprocess.PIPE, text=True, check=True)
        finally:
            os.close(child)
            os.close(parent)
    else:
        proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                              check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[-1].strip().split(".")[0])
    return names


def test_inspect_json_imports_neither_torch_nor_numpy_nor_rich(drive_dir):
    path = drive_dir / "ConvNeXtPose_L (1).tar"
    code = ("import sys; from convnextpose_audit.cli import main; "
            f"sys.argv=['cnxp-audit']; main(['inspect', '--format', 'json', {str(path)!r}])")
    modules = _imported_modules(code)
    assert "convnextpose_audit" in modules
    assert not {"torch", "numpy", "rich"} & modules


def test_table_output_imports_rich_but_not_torch(drive_dir):
    path = drive_dir / "ConvNeXtPose_L (1).tar"
    code = f"from convnextpose_audit.cli import main; main(['inspect', {str(path)!r}])"
    modules = _imported_modules(code, tty=True)
    assert "rich" in modules and not {"torch", "numpy"} & modules


def test_piped_table_prints_text_without_rich(drive_dir):
    path = drive_dir / "ConvNeXtPose_L (1).tar"
    code = f"from convnextpose_audit.cli import main; main(['inspect', {str(path)!r}])"
    modules = _imported_modules(code)
    assert "convnextpose_audit" in modules
    assert not {"torch", "numpy", "rich"} & modules


def test_structure_of_100mb_checkpoint_touches_under_1mb(drive_dir, monkeypatch):

    from convnextpose_audit.reader import source

    path = drive_dir / "ConvNeXtPose_L (1).tar"
    assert path.stat().st_size > 90_000_000
    read = []
    real_pread = os.pread

    def counting_pread(fd, n, offset):
        out = real_pread(fd, n, offset)
        read.append(len(out))
        return out

    def no_mmap(*a, **k):
        raise AssertionError("structure reading must not map tensor bytes")

    monkeypatch.setattr(source.os, "pread", counting_pread)
    monkeypatch.setattr(source.mmap, "mmap", no_mmap)
    with open_checkpoint(path) as ckpt:
        fp = fingerprint(ckpt.obj)
        names = [(k, t.dtype, t.shape) for k, t in ckpt.tensors()]
    assert fp.head_widths == (512, 512, 512)
    assert len(names) > 700  # network + AdamW state
    assert sum(read) < 1_000_000, sum(read)
