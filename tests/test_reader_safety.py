"""Malicious and malformed inputs: refused with typed one-line errors, nothing executed."""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from convnextpose_audit import open_checkpoint
from convnextpose_audit.errors import (ArchiveError, CheckpointReadError, LimitExceeded, MalformedPickleError,
                                       NotACheckpointError, UnsafeCheckpointError)
from convnextpose_audit.reader import Limits
from fixtures import payloads
from fixtures.hostile import clean_data_pkl, torch_zip
from fixtures.pickle_ops import i, s


def touch_command(path) -> str:
    return f"touch {path}"


@pytest.mark.security
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])
def test_os_system_refused(tmp_path, sentinel, zipped, protocol):
    path = tmp_path / "evil.pth"
    path.write_bytes(payloads.with_payload(touch_command(sentinel), protocol, zipped))
    with pytest.raises(UnsafeCheckpointError) as info:
        open_checkpoint(path)
    assert info.value.name == "system" and info.value.module in ("posix", "os", "nt")
    assert "nothing was imported or called" in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.security
@pytest.mark.parametrize("protocol", [2, 3])
@pytest.mark.parametrize("func", ["eval", "exec", "getattr", "__import__"])
def test_builtins_refused(tmp_path, sentinel, func, protocol):
    # Below protocol 3 pickle writes builtins as __builtin__, which the loader maps back before importing.
    module = "__builtin__" if protocol < 3 else "builtins"
    arg = s(f"open({str(sentinel)!r}, 'w')") if func in ("eval", "exec") else s("os")
    args = (i(0), s("system")) if func == "getattr" else (arg,)  # getattr(<anything>, "system"): refused by name
    extra = s("x") + payloads.call(module, func, *args, protocol=protocol) + b"s"
    path = tmp_path / "evil.pth"
    path.write_bytes(payloads.zip_checkpoint(extra, protocol))
    with pytest.raises(UnsafeCheckpointError, match=rf"(__builtin__|builtins)\.{func}"):
        open_checkpoint(path)


@pytest.mark.security
def test_refused_global_in_extracted_folder(tmp_path, sentinel):
    with zipfile.ZipFile(io.BytesIO(payloads.with_payload(touch_command(sentinel), 2))) as z:
        z.extractall(tmp_path / "out")
    with pytest.raises(UnsafeCheckpointError, match="data.pkl"):
        open_checkpoint(tmp_path / "out" / "archive")


def _truncations(data: bytes):
    return [data[: len(data) * k // 8] for k in range(8)]


@pytest.mark.security
@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_truncated_files(tmp_path, zipped):
    whole = payloads.zip_checkpoint() if zipped else payloads.legacy_checkpoint()
    for k, cut in enumerate(_truncations(whole)):
        path = tmp_path / f"cut{k}.pth"
        path.write_bytes(cut)
        with pytest.raises(CheckpointReadError) as info:
            with open_checkpoint(path) as ckpt:
                for _, t in ckpt.tensors():
                    t.numpy()
        assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.security
@pytest.mark.parametrize("content, needle", [
    (b"", "empty file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "PNG image"),
    (b"<!DOCTYPE html><html><title>Google Drive - Quota exceeded</title>", "HTML page"),
    (b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19." + b"\xff" * 64, "malformed pickle"),
    (b"\x80\x02K\x05.", "not a torch checkpoint"),
])
def test_not_checkpoints(tmp_path, content, needle):
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointReadError, match=needle):
        open_checkpoint(path)


@pytest.mark.security
def test_missing_storage_member(tmp_path):
    path = tmp_path / "missing.pth"
    path.write_bytes(torch_zip(clean_data_pkl()))  # data.pkl names storage 0; there is no data/0
    with pytest.raises(ArchiveError, match="data/0 is missing"):
        open_checkpoint(path)


@pytest.mark.security
def test_storage_shorter_than_declared(tmp_path):
    path = tmp_path / "short.pth"
    path.write_bytes(torch_zip(clean_data_pkl(), {"0": bytes(12)}))  # 4 float32 declared, 3 stored
    with pytest.raises(ArchiveError, match="declared"):
        open_checkpoint(path)


@pytest.mark.security
def test_view_past_its_storage(tmp_path):
    from fixtures.pickle_ops import glob, i, s, stop, tup

    storage = tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(4))
    tensor = glob("torch._utils", "_rebuild_tensor_v2") + tup(storage + b"Q", i(2), tup(i(4)), tup(i(1)), b"\x89",
                                                             glob("collections", "OrderedDict") + b")R") + b"R"
    with zipfile.ZipFile(tmp_path / "bad.pth", "w") as z:
        z.writestr("bad/data.pkl", stop(b"}" + s("w") + tensor + b"s"))
        z.writestr("bad/version", "3")  # torch requires it
        z.writestr("bad/data/0", b"\0" * 16)
    with pytest.raises(ArchiveError, match="reaches past its storage"):
        open_checkpoint(tmp_path / "bad.pth")


@pytest.mark.security
def test_storage_key_cannot_escape_folder(tmp_path):
    from fixtures.pickle_ops import glob, i, s, stop, tup

    storage = tup(s("storage"), glob("torch", "FloatStorage"), s("../../../etc/passwd"), s("cpu"), i(1))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.pkl").write_bytes(stop(storage + b"Q"))
    with pytest.raises(MalformedPickleError, match="not a plain name"):
        open_checkpoint(tmp_path / "x")


def test_limits_are_frozen_and_validated():
    import dataclasses

    limits = Limits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_opcodes = 1  # type: ignore[misc]
    with pytest.raises(ValueError):
        Limits(max_memo=0)
    with pytest.raises(ValueError):
        Limits(max_memo="many")  # type: ignore[arg-type]


@pytest.mark.security
def test_opcode_limit(tmp_path):
    path = tmp_path / "clean.pth"
    path.write_bytes(payloads.zip_checkpoint())
    with pytest.raises(LimitExceeded, match="max_opcodes"):
        open_checkpoint(path, limits=Limits(max_opcodes=20))


@pytest.mark.security
def test_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(NotACheckpointError, match="not a regular file"):
        open_checkpoint(fifo)


@pytest.mark.security
def test_symlinked_storage_in_extracted_folder_is_refused(tmp_path):
    with zipfile.ZipFile(io.BytesIO(payloads.zip_checkpoint())) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "archive"
    victim = tmp_path / "secret.txt"
    victim.write_bytes(b"\0" * 4096)
    storage = folder / "data" / "0"
    storage.unlink()
    storage.symlink_to(victim)
    with pytest.raises(ArchiveError, match="symlink"):
        with open_checkpoint(folder) as ckpt:
            for _, t in ckpt.tensors():
                t.numpy()


@pytest.mark.security
def test_symlinked_data_folder_in_extracted_folder_is_refused(tmp_path):
    """data/ itself a link to a folder outside: every path component is opened without following links."""
    with zipfile.ZipFile(io.BytesIO(payloads.zip_checkpoint())) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "archive"
    outside = tmp_path / "outside"
    (folder / "data").rename(outside)
    (folder / "data").symlink_to(outside)
    with pytest.raises(ArchiveError, match="symlink"):
        with open_checkpoint(folder) as ckpt:
            for _, t in ckpt.tensors():
                t.numpy()


def test_hand_built_payloads_are_what_torch_runs(torch, tmp_path):
    """The oracle for the tests above: torch reads each hand-built file and runs each payload (in a child)."""
    import subprocess
    import sys

    for protocol in range(1, 6):
        for zipped in (True, False):
            path = tmp_path / f"clean{protocol}{zipped}.pth"
            path.write_bytes(payloads.zip_checkpoint(protocol=protocol) if zipped
                             else payloads.legacy_checkpoint(protocol=protocol))
            assert torch.load(path, weights_only=False)["network"]["w"].tolist() == list(payloads.VALUES)
            sentinel = tmp_path / f"ran{protocol}{zipped}"
            path.write_bytes(payloads.with_payload(touch_command(sentinel), protocol, zipped))
            subprocess.run([sys.executable, "-c", f"import torch; torch.load({str(path)!r}, weights_only=False)"],
                           check=True, capture_output=True, timeout=120)
            assert sentinel.exists(), (protocol, zipped)
