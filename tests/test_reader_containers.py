"""Every container torch has written, detected from bytes, plus outer zips read in place."""

from __future__ import annotations

import struct
import zipfile

import numpy as np
import pytest

from convnextpose_audit import iter_checkpoints, open_checkpoint
from convnextpose_audit.errors import ArchiveError, CheckpointReadError, NotACheckpointError, SeveralCheckpointsError
from convnextpose_audit.reader import iter_entries
from fixtures import legacy_tar
from zip_tools import outer_zip, patch_central, rezip


def weights(ckpt):
    return {k: v.torch() for k, v in ckpt.obj["network"].items()}


def assert_same_as_torch(torch, ckpt, path_for_torch):
    theirs = torch.load(path_for_torch, weights_only=True)["network"]
    ours = weights(ckpt)
    assert list(ours) == list(theirs)
    for k in theirs:
        assert torch.equal(ours[k], theirs[k]), k


@pytest.mark.parametrize("ext", [".tar", ".pth", ".pt", ".bin", ".ckpt", ""])
def test_zip_any_extension(small_ckpt, tmp_path, torch, ext):
    path = tmp_path / f"renamed{ext}"
    path.write_bytes(small_ckpt.read_bytes())
    with open_checkpoint(path) as ckpt:
        assert ckpt.format == "zip"
        assert_same_as_torch(torch, ckpt, small_ckpt)


def test_internal_prefix_is_the_saved_name(small_ckpt):
    names = zipfile.ZipFile(small_ckpt).namelist()
    assert names[0].startswith("snapshot_5.pth/")
    with open_checkpoint(small_ckpt) as ckpt:
        assert ckpt.obj["epoch"] == 5


def test_deflated_members(small_ckpt, tmp_path, torch):
    path = rezip(small_ckpt, tmp_path / "deflated.pth")
    assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zipfile.ZipFile(path).infolist())
    with open_checkpoint(path) as ckpt:
        assert_same_as_torch(torch, ckpt, small_ckpt)


def test_wrong_crc_is_read_with_a_warning(small_ckpt, tmp_path, torch):
    data = patch_central(small_ckpt.read_bytes(), "/data.pkl", 16, "<L", 0xDEADBEEF)
    path = tmp_path / "badcrc.pth"
    path.write_bytes(data)
    with pytest.raises(zipfile.BadZipFile):  # Python's zipfile refuses it ...
        zipfile.ZipFile(path).read(zipfile.ZipFile(path).namelist()[0])
    torch.load(path, weights_only=True)  # ... torch reads it ...
    with open_checkpoint(path) as ckpt:  # ... and so do we, saying so.
        assert any("CRC" in w for w in ckpt.warnings)
        assert_same_as_torch(torch, ckpt, small_ckpt)


def test_extracted_folder_and_data_pkl(small_ckpt, tmp_path, torch):
    with zipfile.ZipFile(small_ckpt) as z:
        z.extractall(tmp_path)
    folder = tmp_path / "snapshot_5.pth"
    with pytest.raises(IsADirectoryError):
        torch.load(folder, weights_only=True)
    with open_checkpoint(folder) as ckpt:
        assert ckpt.format == "extracted"
        assert_same_as_torch(torch, ckpt, small_ckpt)
    # A file given by name is read as itself, as torch.load reads it (and fails): the error says what was meant.
    with pytest.raises(CheckpointReadError, match="name its folder"):
        open_checkpoint(folder / "data.pkl")


def test_folder_without_data_pkl(tmp_path):
    with pytest.raises(NotACheckpointError, match="without an extracted checkpoint"):
        open_checkpoint(tmp_path)


def test_outer_zip_read_in_place(small_ckpt, tmp_path, torch):
    extracted = {}
    with zipfile.ZipFile(small_ckpt) as z:
        for n in z.namelist():
            extracted[f"drive/unzipped/{n}"] = z.read(n)
    inner_zip = outer_zip(tmp_path / "inner.zip", {"deep/ConvNeXtPose_S.tar": small_ckpt})
    members = {"drive/ConvNeXtPose_L (1).tar": small_ckpt, "drive/ConvNeXtPose_M (1).tar": small_ckpt,
               "drive/readme.txt": b"hello", "drive/nested.zip": inner_zip, **extracted}
    for compression in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        outer = outer_zip(tmp_path / f"outer{compression}.zip", members, compression)
        entries = list(iter_entries(outer))
        names = [e.name for e in entries]
        prefix = str(outer)
        assert f"{prefix}!drive/ConvNeXtPose_L (1).tar" in names
        assert f"{prefix}!drive/unzipped/snapshot_5.pth" in names
        assert f"{prefix}!drive/nested.zip!deep/ConvNeXtPose_S.tar" in names
        skipped = [e for e in entries if e.skipped]
        assert [e.name for e in skipped] == [f"{prefix}!drive/readme.txt"]
        ckpts = list(iter_checkpoints(outer))
        assert len(ckpts) == 4
        assert {c.format for c in ckpts} == {"zip", "extracted"}
        for c in ckpts:
            assert_same_as_torch(torch, c, small_ckpt)
            c.close()
    assert not (tmp_path / "drive").exists()  # nothing was extracted
    with pytest.raises(SeveralCheckpointsError, match="4 checkpoints"):
        open_checkpoint(outer)


@pytest.mark.security
def test_outer_zip_depth_is_bounded(tmp_path):
    from convnextpose_audit.errors import LimitExceeded
    from convnextpose_audit.reader import Limits
    from fixtures.payloads import zip_checkpoint

    inner = tmp_path / "a.pth"
    inner.write_bytes(zip_checkpoint())
    for level in range(4):
        inner = outer_zip(tmp_path / f"z{level}.zip", {f"l{level}.zip" if level else "a.pth": inner})
    entries = list(iter_entries(inner, limits=Limits(max_outer_depth=2)))
    assert len(entries) == 1
    with pytest.raises(LimitExceeded, match="max_outer_depth"):
        entries[0].open()
    assert len(list(iter_checkpoints(inner))) == 1


def test_legacy_tar_format(tmp_path, torch):
    path = tmp_path / "old_checkpoint.pth"
    path.write_bytes(legacy_tar.build(legacy_tar.SAMPLE))
    theirs = torch.load(path, weights_only=False)  # torch still reads torch <= 0.3 tar files
    with open_checkpoint(path) as ckpt:
        assert ckpt.format == "tar"
        assert list(ckpt.obj) == list(theirs)
        for k in theirs:
            assert torch.equal(ckpt.obj[k].torch(), theirs[k])


def test_safetensors(tmp_path, torch):
    st = pytest.importorskip("safetensors.torch")
    tensors = {"a": torch.randn(3, 4), "b": torch.arange(5, dtype=torch.int64), "c": torch.randn(2).to(torch.bfloat16)}
    path = tmp_path / "w.bin"
    st.save_file(tensors, str(path), metadata={"variant": "L"})
    with open_checkpoint(path) as ckpt:
        assert ckpt.format == "safetensors"
        assert ckpt.metadata == {"variant": "L"}
        for k, t in tensors.items():
            assert torch.equal(ckpt.obj[k].torch(), t)
        assert np.array_equal(ckpt.obj["b"].numpy(), tensors["b"].numpy())


def test_big_endian_zip_is_byteswapped(small_ckpt, tmp_path, torch):
    big = {}
    with zipfile.ZipFile(small_ckpt) as z:
        for n in z.namelist():
            data = z.read(n)
            big[n] = data
    with open_checkpoint(small_ckpt) as ckpt:
        refs = {k: v for k, v in ckpt.obj["network"].items()}
        for k, ref in refs.items():
            member = f"snapshot_5.pth/data/{ref.storage.key}"
            arr = np.frombuffer(big[member], dtype=ref._dtype.numpy)
            big[member] = arr.byteswap().tobytes()
        expected = {k: v.torch().clone() for k, v in refs.items()}
    big["snapshot_5.pth/byteorder"] = b"big"
    path = outer_zip(tmp_path / "big.pth", big)
    with open_checkpoint(path) as ckpt:
        assert ckpt.byteorder == "big"
        for k, t in expected.items():
            assert torch.equal(ckpt.obj["network"][k].torch(), t), k


def _torch_like_zip(path, *, version=True, top="archive/", data_method=None):
    """A hand-built torch.save layout (tests/fixtures/hostile.clean_data_pkl), optionally without version."""
    from fixtures.hostile import clean_data_pkl

    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{top}data.pkl", clean_data_pkl())
        z.writestr(f"{top}data/0", b"\0" * 16)
        if version:
            z.writestr(f"{top}version", "3")
    if data_method is not None:
        path.write_bytes(patch_central(path.read_bytes(), "/data/0", 10, "<H", data_method))
    return path


@pytest.mark.parametrize("case, kwargs, reason", [
    ("no version record", {"version": False}, "no version record"),  # torch: Expected hasRecord("version")
    ("records at the root", {"top": ""}, "not in a folder"),  # torch: file in archive is not in a subdirectory
    ("storage compressed with bzip2", {"data_method": 12}, "method 12"),  # torch: unsupported method
])
def test_zips_torch_refuses_are_not_read(tmp_path, case, kwargs, reason):
    path = _torch_like_zip(tmp_path / "ckpt.pth", **kwargs)
    with pytest.raises(CheckpointReadError, match=reason):
        with open_checkpoint(path) as ckpt:
            ckpt.tensors()


def _flagged(path, suffix: str, trick: str):
    """Mark one record encrypted, or as compressed with bzip2 (its bytes stay stored)."""
    if trick == "encrypted":
        flags = struct.unpack_from("<H", path.read_bytes(), _central_at(path.read_bytes(), suffix) + 8)[0]
        path.write_bytes(patch_central(path.read_bytes(), suffix, 8, "<H", flags | 1))
    else:
        path.write_bytes(patch_central(path.read_bytes(), suffix, 10, "<H", 12))
    return path


def _central_at(data: bytes, suffix: str) -> int:
    from zip_tools import central_entries

    return next(at for at, name in central_entries(data) if name.endswith(suffix))


@pytest.mark.parametrize("record", ["/.format_version", "/data/0"])
@pytest.mark.parametrize("trick", ["encrypted", "bzip2"])
def test_zip_member_flags_refuse_the_whole_archive(tmp_path, record, trick):
    """Differential class zip_member_flags: a record miniz cannot extract, even one torch never reads itself
    (``.format_version``), fails torch.load on the whole archive; the audit, which reads no storage, refuses too."""
    from convnextpose_audit.audit import audit_path
    from convnextpose_audit.variants import load_registry

    path = _torch_like_zip(tmp_path / "ckpt.pth")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("archive/.format_version", "1")
    _flagged(path, record, trick)
    results, _ = audit_path(str(path), load_registry())
    assert [r.verdict.value for r in results] == ["UNREADABLE"]
    assert "miniz lacks; torch fails on" in results[0].error or "is encrypted; torch fails on" in results[0].error


def test_zip_member_flags_fail_torch_load(tmp_path, torch):
    """The oracle for the test above: torch 2.13 refuses each of those archives."""
    for record in ("/.format_version", "/data/0"):
        for trick in ("encrypted", "bzip2"):
            path = _torch_like_zip(tmp_path / f"{trick}{record.replace('/', '_')}.pth")
            with zipfile.ZipFile(path, "a") as z:
                z.writestr("archive/.format_version", "1")
            _flagged(path, record, trick)
            with pytest.raises(RuntimeError, match="failed retrieving file meta-data"):
                torch.load(path, weights_only=False)


def test_a_tree_inside_a_zip_is_read_with_a_warning(tmp_path):
    inner = _torch_like_zip(tmp_path / "inner.zip", top="ConvNeXtPose_L/snapshot_83.pth/")
    entries = [e for e in iter_entries(inner) if e.open]
    assert [e.name for e in entries] == [f"{inner}!ConvNeXtPose_L/snapshot_83.pth"]
    with entries[0].open() as ckpt:
        assert ckpt.format == "extracted"
        assert any("torch.load cannot read it as it is" in w for w in ckpt.warnings)


def test_torch_213_dispatch_by_name_is_a_warning(tmp_path):
    named = _torch_like_zip(tmp_path / "ckpt.safetensors")
    with open_checkpoint(named) as ckpt:  # torch < 2.13 reads these bytes; 2.13 sends the name to safetensors
        assert ckpt.format == "zip" and any("named .safetensors" in w for w in ckpt.warnings)
