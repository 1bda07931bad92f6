"""Malicious and malformed inputs: refused with typed one-line errors, nothing executed."""

from __future__ import annotations

import os
import zipfile

import pytest

from convnextpose_audit import open_checkpoint
from convnextpose_audit.errors import (ArchiveError, CheckpointReadError, LimitExceeded, MalformedPickleError,
                                       NotACheckpointError, UnsafeCheckpointError)
from convnextpose_audit.reader import Limits
from zip_tools import rezip


class Payload:
    """Pickles as a call to ``func(*args)``: what an attacker puts in a checkpoint."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch_command(path) -> str:
    return f"touch {path}"


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("protocol", [1, 2, 3, 4, 5])
def test_os_system_refused(torch, tmp_path, sentinel, zipped, protocol):
    path = tmp_path / "evil.pth"
    evil = {"network": {"w": torch.zeros(2)}, "x": Payload(os.system, touch_command(sentinel))}
    torch.save(evil, path, _use_new_zipfile_serialization=zipped, pickle_protocol=protocol)
    with pytest.raises(UnsafeCheckpointError) as info:
        open_checkpoint(path)
    assert info.value.name == "system" and info.value.module in ("posix", "os", "nt")
    assert "nothing was imported or called" in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("func", [eval, exec, getattr, __import__], ids=lambda f: f.__name__)
def test_builtins_refused(torch, tmp_path, sentinel, func):
    path = tmp_path / "evil.pth"
    arg = f"open({str(sentinel)!r}, 'w')" if func in (eval, exec) else "os"
    # getattr(<anything>, "system") is refused at the name, before any argument matters
    torch.save({"x": Payload(func, arg) if func is not getattr else Payload(func, 0, "system")}, path)
    with pytest.raises(UnsafeCheckpointError, match=rf"(__builtin__|builtins)\.{func.__name__}"):
        open_checkpoint(path)


def test_refused_global_in_extracted_folder(torch, tmp_path, sentinel):
    path = tmp_path / "evil.pth"
    torch.save({"x": Payload(os.system, touch_command(sentinel))}, path)
    with zipfile.ZipFile(path) as z:
        z.extractall(tmp_path / "out")
    with pytest.raises(UnsafeCheckpointError, match="data.pkl"):
        open_checkpoint(tmp_path / "out" / "evil")


def _truncations(data: bytes):
    return [data[: len(data) * k // 8] for k in range(8)]


@pytest.mark.parametrize("zipped", [True, False], ids=["zip", "legacy"])
def test_truncated_files(small_ckpt, torch, tmp_path, zipped):
    src = small_ckpt
    if not zipped:
        src = tmp_path / "legacy.pth"
        torch.save(torch.load(small_ckpt, weights_only=True), src, _use_new_zipfile_serialization=False)
    for k, cut in enumerate(_truncations(src.read_bytes())):
        path = tmp_path / f"cut{k}.pth"
        path.write_bytes(cut)
        with pytest.raises(CheckpointReadError) as info:
            with open_checkpoint(path) as ckpt:
                for _, t in ckpt.tensors():
                    t.numpy()
        assert str(path) in str(info.value) and "\n" not in str(info.value)


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


def test_missing_storage_member(small_ckpt, tmp_path):
    path = rezip(small_ckpt, tmp_path / "missing.pth", compression=zipfile.ZIP_STORED, drop="/data/0")
    with pytest.raises(ArchiveError, match="data/0 is missing"):
        open_checkpoint(path)


def test_storage_shorter_than_declared(small_ckpt, tmp_path):
    with zipfile.ZipFile(small_ckpt) as zin, zipfile.ZipFile(tmp_path / "short.pth", "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info.filename, data[:-4] if info.filename.endswith("/data/0") else data)
    with pytest.raises(ArchiveError, match="declared"):
        open_checkpoint(tmp_path / "short.pth")


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


def test_opcode_limit(small_ckpt):
    with pytest.raises(LimitExceeded, match="max_opcodes"):
        open_checkpoint(small_ckpt, limits=Limits(max_opcodes=50))


def test_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(NotACheckpointError, match="not a regular file"):
        open_checkpoint(fifo)


def test_symlinked_storage_in_extracted_folder_is_refused(small_ckpt, tmp_path):
    with zipfile.ZipFile(small_ckpt) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "snapshot_5.pth"
    victim = tmp_path / "secret.txt"
    victim.write_bytes(b"\0" * 4096)
    storage = folder / "data" / "0"
    storage.unlink()
    storage.symlink_to(victim)
    with pytest.raises(ArchiveError, match="symlink"):
        with open_checkpoint(folder) as ckpt:
            for _, t in ckpt.tensors():
                t.numpy()
