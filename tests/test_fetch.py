"""fetch with gdown replaced at its API boundary (no network in tests)."""

from __future__ import annotations

import collections
import json
import os
from pathlib import Path

import pytest
import requests
from gdown.exceptions import DownloadError, FileURLRetrievalError

from conftest import run_cli
from convnextpose_audit import fetch as fetch_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "drive"
Item = collections.namedtuple("GoogleDriveFileToDownload", ("id", "path", "local_path"))


class FolderContentsMaximumLimitError(Exception):
    """Named like gdown 5's exception for folders over its file limit."""


class FakeGdown:
    """gdown's download_folder/download, serving bytes from memory and recording calls."""

    def __init__(self, files: dict[str, bytes], *, list_error=None, download_error=None):
        self.files = files
        self.list_error = list_error
        self.download_error = download_error
        self.downloaded: list[str] = []

    def download_folder(self, id=None, output=None, quiet=False, skip_download=False, **kw):
        assert skip_download
        if self.list_error:
            raise self.list_error
        root = os.path.join(output, "ConvNeXtPose")
        return [Item(name, f"ConvNeXtPose/{name}", os.path.join(root, name)) for name in self.files]

    def download(self, id=None, output=None, quiet=False, progress=None, cancel=None, skip_download=False, **kw):
        if skip_download:
            return Item(id, id, os.path.join(output, id))
        if self.download_error:
            raise self.download_error
        data = self.files[id]
        if progress is not None:
            progress(min(len(data), 8192), len(data))
            if cancel is not None and cancel.is_set():
                from gdown.exceptions import DownloadCancelled
                raise DownloadCancelled()
        with open(output, "wb") as fh:
            fh.write(data)
        self.downloaded.append(id)
        return output


@pytest.fixture
def drive_files():
    return {p.name: p.read_bytes() for p in EXAMPLES.iterdir()}


def use(monkeypatch, fake):
    monkeypatch.setattr(fetch_module, "_gdown", lambda: fake)


def test_fetch_then_scan(monkeypatch, tmp_path, drive_files):
    fake = FakeGdown(drive_files)
    use(monkeypatch, fake)
    result = run_cli("fetch", "--out", tmp_path / "dl", "--format", "json")
    report = json.loads(result.stdout)
    assert sorted(fake.downloaded) == sorted(drive_files)
    assert report["summary"]["counts"]["MATCH"] == 4 and report["summary"]["counts"]["MISMATCH"] == 1
    assert result.exit_code == 1  # scan's code: the mislabeled mirror copy


def test_skip_existing_same_size(monkeypatch, tmp_path, drive_files):
    fake = FakeGdown(drive_files)
    use(monkeypatch, fake)
    target = tmp_path / "dl" / "ConvNeXtPose"
    target.mkdir(parents=True)
    (target / "ConvNeXtPose_S.tar").write_bytes(drive_files["ConvNeXtPose_S.tar"])
    (target / "ConvNeXtPose_XS.tar").write_bytes(b"partial")  # wrong size: fetched again
    result = run_cli("fetch", "--out", tmp_path / "dl", "--format", "json")
    assert "ConvNeXtPose_S.tar" not in fake.downloaded
    assert "ConvNeXtPose_XS.tar" in fake.downloaded
    assert (target / "ConvNeXtPose_XS.tar").read_bytes() == drive_files["ConvNeXtPose_XS.tar"]
    assert "already present" in result.stderr


@pytest.mark.parametrize("error, needle", [
    (requests.exceptions.ConnectionError("Max retries exceeded: Name or service not known"), "no network"),
    (FileURLRetrievalError("Too many users have viewed or downloaded this file recently. Please try accessing "
                           "the file again later."), "quota exceeded"),
    (DownloadError("Failed to retrieve folder contents for folder ID: x (status code 403). You may need to change "
                   "the permission to 'Anyone with the link'"), "not public"),
    (FolderContentsMaximumLimitError("The gdrive folder with url: x has more than 50 files, gdrive can't download "
                                     "more than this limit."), "more files than gdown can list"),
])
def test_listing_failures_are_one_line(monkeypatch, tmp_path, error, needle):
    use(monkeypatch, FakeGdown({}, list_error=error))
    result = run_cli("fetch", "--out", tmp_path / "dl")
    assert result.exit_code == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_download_failure_is_one_line(monkeypatch, tmp_path, drive_files):
    error = FileURLRetrievalError("Failed to retrieve file url:\n\n\tToo many users have viewed or downloaded this "
                                  "file recently.\n\nYou may still be able to access the file from the browser")
    use(monkeypatch, FakeGdown(drive_files, download_error=error))
    result = run_cli("fetch", "--out", tmp_path / "dl", "-q")
    assert result.exit_code == 3
    assert result.stderr.count("\n") == 1 and "quota exceeded" in result.stderr


def test_parse_target():
    assert fetch_module.parse_target(fetch_module.OFFICIAL_FOLDER) == ("folder", "12H7zkLvmJtrkCmAUAPkQ6788WAnO60gI")
    assert fetch_module.parse_target("https://drive.google.com/file/d/1AbCdEfGhIj/view?usp=sharing") == \
        ("file", "1AbCdEfGhIj")
    assert fetch_module.parse_target("https://drive.google.com/uc?id=1AbCdEfGhIj") == ("file", "1AbCdEfGhIj")
    with pytest.raises(fetch_module.DownloadFailed):
        fetch_module.parse_target("not a url")


def test_listing_cannot_escape_out_dir(monkeypatch, tmp_path):
    class Evil(FakeGdown):
        def download_folder(self, id=None, output=None, **kw):
            return [Item("x", "../../escape", os.path.join(output, "..", "..", "escape"))]

    use(monkeypatch, Evil({"x": b"1"}))
    result = run_cli("fetch", "--out", tmp_path / "a" / "b")
    assert result.exit_code == 3 and "outside" in result.stderr
    assert not (tmp_path / "escape").exists()


@pytest.mark.online
def test_real_official_folder(tmp_path):
    result = run_cli("fetch", "--out", tmp_path, "--format", "json")
    assert result.exit_code in (0, 1)
