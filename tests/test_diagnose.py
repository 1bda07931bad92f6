"""diagnose.py: bad downloads told in the user's terms, from bytes alone (no torch needed)."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import pytest

from convnextpose_audit.diagnose import diagnose, looks_like_checkpoint
from fixtures.hostile import clean_data_pkl, torch_zip
from fixtures.verdict_cases import DRIVE_WARNING, LFS_POINTER, TRUNCATED


def run(data: bytes, name: str = "ConvNeXtPose_L.tar") -> str | None:
    return diagnose(data[:1024], len(data), name, lambda offset, n: data[offset:offset + n])


def test_empty_file():
    assert run(b"") == "empty file: the download did not finish (0 bytes); download it again"


@pytest.mark.parametrize("pointer, real", [(LFS_POINTER, "100,853,587"), (LFS_POINTER.rsplit(b"size", 1)[0], None)])
def test_git_lfs_pointer(pointer, real):
    reason = run(pointer)
    assert reason.startswith("Git LFS pointer, not the file") and reason.endswith("run `git lfs pull`")
    assert (real in reason) if real else "bytes" not in reason


@pytest.mark.parametrize("page", [DRIVE_WARNING, b"\xef\xbb\xbf\n  <HTML><body>Quota exceeded</body></HTML>",
                                  b"<head><title>x</title></head>", b"<?xml?>\n<html lang=en>"])
def test_web_page(page):
    assert run(page).startswith("Drive returned a web page (quota or virus-scan warning), not the file")


@pytest.mark.parametrize("data", [b"In this folder: the weights.\n", b"\x89PNG\r\n\x1a\n" + bytes(100),
                                  bytes(range(256)) * 4])
def test_other_bytes_are_left_to_the_reader(data):
    assert run(data) is None


def test_complete_zip_is_not_called_truncated():
    assert run(torch_zip(clean_data_pkl(), {"0": bytes(16)})) is None


def test_cut_zip_counts_the_storages_data_pkl_lists():
    """clean_data_pkl() declares one float32 storage of 4 elements: 16 bytes after data.pkl's record."""
    whole = torch_zip(clean_data_pkl(), {"0": bytes(16)})
    with zipfile.ZipFile(io.BytesIO(whole)) as z:
        info = z.getinfo("archive/data.pkl")
    pkl_end = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
    cut = whole[:pkl_end + 4]
    m = TRUNCATED.search(run(cut))
    assert m and m[2] == "at least " and int(m[1].replace(",", "")) == len(cut)
    assert int(m[3].replace(",", "")) == pkl_end + 16


def test_cut_zip_with_nothing_to_measure():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:  # a deflated data.pkl: torch never writes one
        z.writestr("archive/data.pkl", clean_data_pkl())
    cut = buf.getvalue()[:-30]
    reason = run(cut)
    assert reason == f"truncated: {len(cut):,} bytes: the download or copy did not finish " \
                     "(tensor data and the zip directory missing)"


def _safetensors(n: int) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(4 * n)


@pytest.mark.parametrize("keep", [5, 30, 100])  # in the length, in the JSON header, in the tensor data
def test_cut_safetensors_is_measured_exactly(keep):
    whole = _safetensors(64)
    header_end = 8 + struct.unpack_from("<Q", whole)[0]
    expected = 8 if keep < 8 else header_end if keep < header_end else len(whole)
    assert run(whole[:keep], "model.safetensors").startswith(f"truncated: {keep:,} of {expected:,} bytes:")
    assert run(whole, "model.safetensors") is None


@pytest.mark.parametrize("name, claims", [
    ("ConvNeXtPose_L (1).tar", True), ("snapshot_83.pth.tar", True), ("model.PT", True), ("last.ckpt", True),
    ("pytorch_model.bin", True), ("model.safetensors", True), ("outer.zip!drive/ConvNeXtPose_S.pth", True),
    ("notes.txt", False), ("weights.zip", False), ("model.pth.txt", False), ("outer.pth!inner.txt", False),
])
def test_names_that_claim_to_be_checkpoints(name, claims):
    assert looks_like_checkpoint(name) is claims
