"""Checkpoints read over HTTP from a local server: Range reads, fallbacks, faults, counters.

Every server here is ``tests/http_server.py`` on 127.0.0.1; no test touches the internet.
Traffic is checked against the server's own log, not only against the client's counters.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from conftest import DRIVE_NAMES, run_cli
from http_server import LocalServer

from convnextpose_audit.errors import DownloadFailed, LimitExceeded
from convnextpose_audit.reader import open_checkpoint
from convnextpose_audit.reader.remote import (RangeCache, RemoteOptions, RemoteSource, is_url, plan_fetches,
                                              resolve_url)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "drive"
L_NAME = DRIVE_NAMES["L"]
MiB = 1 << 20


@pytest.fixture
def examples_server():
    with LocalServer({p.name: p for p in EXAMPLES.iterdir()}) as server:
        yield server


@pytest.fixture(scope="module")
def drive_server(drive_dir):
    with LocalServer({p.name: p for p in Path(drive_dir).iterdir()}) as server:
        yield server


@pytest.fixture
def fast_fail(monkeypatch):
    """Short timeouts and no retries, so fault tests take a fraction of a second."""
    monkeypatch.setenv("CNXP_AUDIT_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("CNXP_AUDIT_HTTP_RETRIES", "0")


def _inspect_json(*args):
    result = run_cli("inspect", "--format", "json", *args)
    return result, json.loads(result.stdout) if result.stdout else None


def _one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr
    assert "Traceback" not in result.stderr


# -- the L file over a Range server --------------------------------------------------------------
def test_real_size_l_file_matches_in_at_most_6_requests_and_1_mib(drive_server, drive_dir):
    url = drive_server.url(L_NAME)
    assert "%20" in url  # as a browser writes "ConvNeXtPose_L (1).tar"
    result, report = _inspect_json(url)
    assert result.exit_code == 0, result.stderr
    entry = report["files"][0]
    assert entry["verdict"] == "MATCH" and entry["inferred"] == "L"
    size = (Path(drive_dir) / L_NAME).stat().st_size
    assert size > 90_000_000 and entry["size"] == size
    # The server's account: requests it answered and body bytes it sent.
    assert len(drive_server.log) <= 6 and drive_server.bytes_sent <= MiB, drive_server.log
    assert entry["requests"] == len(drive_server.log)
    assert entry["bytes_read"] == drive_server.bytes_sent
    assert all(hit.status == 206 for hit in drive_server.log)


def test_example_l_matches_over_http_and_counts_traffic(examples_server):
    result, report = _inspect_json(examples_server.url(L_NAME))
    assert result.exit_code == 0
    entry = report["files"][0]
    assert (entry["verdict"], entry["declared"], entry["inferred"]) == ("MATCH", "L", "L")
    assert entry["requests"] == len(examples_server.log) and entry["bytes_read"] == examples_server.bytes_sent
    assert examples_server.log[0].range == "bytes=-131072"  # the tail comes first


def test_verbose_shows_bytes_and_requests(examples_server):
    result = run_cli("inspect", "-v", examples_server.url(L_NAME))
    assert result.exit_code == 0
    assert f"bytes over HTTP in {len(examples_server.log)} request(s)" in result.stdout


def test_local_files_report_no_traffic():
    _, report = _inspect_json(str(EXAMPLES / L_NAME))
    assert report["files"][0]["bytes_read"] is None and report["files"][0]["requests"] is None


def test_server_without_range_support_streams_once_with_a_note(examples_server):
    examples_server.behaviour.ranges = False
    result, report = _inspect_json(examples_server.url("ConvNeXtPose_L_mirror.tar"))
    assert result.exit_code == 1  # the mirror holds M weights under an L name
    assert report["files"][0]["verdict"] == "MISMATCH"
    assert len(examples_server.log) == 1 and examples_server.log[0].status == 200
    assert report["files"][0]["bytes_read"] == (EXAMPLES / "ConvNeXtPose_L_mirror.tar").stat().st_size
    assert "ignores Range requests; downloading the whole file once" in result.stderr
    assert result.stderr.count("\n") == 1  # one note; no progress bar when stderr is not a terminal


def test_redirect_is_followed_and_counted(examples_server):
    examples_server.behaviour.redirects["latest.tar"] = "/" + L_NAME.replace(" ", "%20")
    result, report = _inspect_json(examples_server.url("latest.tar") + "?name=ConvNeXtPose_L.tar")
    assert result.exit_code == 0, result.stderr
    assert report["files"][0]["verdict"] == "MATCH"
    # the first request is redirected (2 hits); later ranges go straight to the target
    assert [h.status for h in examples_server.log] == [302, 206, 206]
    assert report["files"][0]["requests"] == 3


def test_scan_of_a_url_audits_that_one_file(examples_server):
    result = run_cli("scan", "--format", "json", examples_server.url("ConvNeXtPose_S.tar"))
    report = json.loads(result.stdout)
    assert result.exit_code == 0
    assert [f["verdict"] for f in report["files"]] == ["MATCH"] and report["summary"]["skipped"] == []


def test_hf_url_resolves_to_the_hub_resolve_endpoint():
    # https://huggingface.co/docs/hub: files download from /{repo}/resolve/{revision}/{path}
    assert resolve_url("hf://acme/pose/ckpt/ConvNeXtPose_L (1).tar") == \
        "https://huggingface.co/acme/pose/resolve/main/ckpt/ConvNeXtPose_L%20%281%29.tar"
    assert resolve_url("hf://acme/pose@v1.0/model.pth") == "https://huggingface.co/acme/pose/resolve/v1.0/model.pth"
    assert resolve_url("hf://acme/pose@refs%2Fpr%2F3/m.pth") == \
        "https://huggingface.co/acme/pose/resolve/refs%2Fpr%2F3/m.pth"
    assert resolve_url("hf://datasets/acme/data/x.pth") == "https://huggingface.co/datasets/acme/data/resolve/main/x.pth"
    assert resolve_url("http://example.org/a b") == "http://example.org/a b"
    with pytest.raises(DownloadFailed, match="owner/repo/path"):
        resolve_url("hf://acme/pose")
    assert is_url("HTTPS://x/y") and is_url("hf://a/b/c") and not is_url("ConvNeXtPose_L.tar")


# -- faults: one line, exit 3 --------------------------------------------------------------------
def test_404_is_one_line_exit_3(examples_server, fast_fail):
    result = run_cli("inspect", examples_server.url("missing.tar"))
    assert result.exit_code == 3
    assert "HTTP 404" in result.stdout  # an UNREADABLE row with the reason


def test_wrong_content_range_is_refused(examples_server, fast_fail):
    examples_server.behaviour.wrong_range = True
    result, report = _inspect_json(examples_server.url(L_NAME))
    assert result.exit_code == 3
    assert report["files"][0]["verdict"] == "UNREADABLE"
    assert "wrong Content-Range" in report["files"][0]["error"]


def test_truncated_body_is_reported(examples_server, fast_fail):
    examples_server.behaviour.truncate_to = 1000
    result, report = _inspect_json(examples_server.url(L_NAME))
    assert result.exit_code == 3
    assert "shorter than announced" in report["files"][0]["error"]


def test_truncated_whole_download_is_reported(examples_server, fast_fail):
    examples_server.behaviour.ranges = False
    examples_server.behaviour.truncate_to = 50_000
    result, report = _inspect_json(examples_server.url(L_NAME))
    assert result.exit_code == 3
    assert "shorter than announced" in report["files"][0]["error"]


def test_slow_server_times_out(examples_server, fast_fail):
    examples_server.behaviour.delay = 3.0
    start = time.monotonic()
    result, report = _inspect_json(examples_server.url(L_NAME))
    assert time.monotonic() - start < 2.5
    assert result.exit_code == 3 and "timed out" in report["files"][0]["error"]


def test_connection_refused(fast_fail):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result, report = _inspect_json(f"http://127.0.0.1:{port}/ConvNeXtPose_L.tar")
    assert result.exit_code == 3 and "connection refused" in report["files"][0]["error"]


def test_tls_error_is_one_line(examples_server, fast_fail):
    # https to a plain-HTTP port: the TLS handshake fails
    result = run_cli("diff", examples_server.url(L_NAME).replace("http://", "https://"), str(EXAMPLES / L_NAME))
    _one_line_error(result, 3, "TLS error")


def test_diff_error_on_404_is_one_line(examples_server, fast_fail):
    result = run_cli("diff", examples_server.url("nope.tar"), str(EXAMPLES / L_NAME))
    _one_line_error(result, 3, "HTTP 404")


def test_transient_503_is_retried(examples_server):
    examples_server.behaviour.fail_first = [503]
    options = RemoteOptions(retries=1, backoff=0.01)
    source = RemoteSource(examples_server.url(L_NAME), options=options)
    assert source.requests == 2 and source.size == (EXAMPLES / L_NAME).stat().st_size
    examples_server.behaviour.fail_first = [503, 503]
    with pytest.raises(DownloadFailed, match="HTTP 503"):
        RemoteSource(examples_server.url(L_NAME), options=options)


def test_size_limit_and_content_length_checks(examples_server):
    with pytest.raises(LimitExceeded, match="over the limit"):
        RemoteSource(examples_server.url(L_NAME), options=RemoteOptions(max_file_bytes=1000))
    examples_server.behaviour.content_length = "12"
    with pytest.raises(DownloadFailed, match="Content-Length"):
        RemoteSource(examples_server.url(L_NAME), options=RemoteOptions(retries=0))


# -- tensor bytes need the whole file -------------------------------------------------------------
def test_hash_on_a_url_downloads_once_and_says_so(examples_server):
    local = json.loads(run_cli("inspect", "--format", "json", "--hash", str(EXAMPLES / L_NAME)).stdout)
    result, report = _inspect_json("--hash", examples_server.url(L_NAME))
    assert result.exit_code == 0
    assert "reading tensor data needs the whole file" in result.stderr
    assert report["files"][0]["digest"] == local["files"][0]["digest"]
    assert report["files"][0]["bytes_read"] >= (EXAMPLES / L_NAME).stat().st_size


def test_diff_convert_and_verify_accept_urls(examples_server, tmp_path, torch):
    url = examples_server.url(L_NAME)
    assert run_cli("diff", url, str(EXAMPLES / L_NAME)).exit_code == 0  # identical weights
    out = tmp_path / "l.safetensors"
    assert run_cli("convert", url, str(out)).exit_code == 0
    from safetensors.numpy import load_file

    assert len(load_file(str(out))) == 260
    verified = run_cli("verify", "--format", "json", url)
    assert verified.exit_code == 0 and json.loads(verified.stdout)["variant"] == "L"


def test_legacy_checkpoint_over_http(tmp_path, torch):
    path = tmp_path / "legacy.pth"
    torch.save({"network": {f"w{i}": torch.zeros(300_000) for i in range(40)}}, path,
               _use_new_zipfile_serialization=False)
    with LocalServer({"legacy.pth": path}) as server:
        with open_checkpoint(server.url("legacy.pth")) as ckpt:
            assert ckpt.format == "legacy" and len(ckpt.tensors()) == 40


# -- the range cache and the request plan ----------------------------------------------------------
def test_range_cache_merges_and_finds_gaps():
    cache = RangeCache()
    cache.add(10, b"a" * 10)
    cache.add(30, b"b" * 10)
    assert cache.missing(0, 50) == [(0, 10), (20, 30), (40, 50)]
    cache.add(20, b"c" * 10)  # fills the hole: one range 10..40
    assert cache.missing(10, 40) == [] and cache.get(18, 4) == b"aacc"
    cache.add(5, b"d" * 40)  # overlaps everything
    assert cache.missing(5, 45) == [] and cache.get(5, 40) == b"d" * 40 and cache.nbytes == 40


def test_plan_coalesces_near_ranges_and_reads_ahead():
    options = RemoteOptions(min_fetch=100, coalesce_gap=50)
    cache = RangeCache()
    assert plan_fetches([(0, 10), (120, 130)], cache, 10_000, options) == [(0, 220)]
    assert plan_fetches([(0, 10), (500, 510)], cache, 10_000, options) == [(0, 100), (500, 600)]
    cache.add(60, b"x" * 10)
    assert plan_fetches([(0, 10)], cache, 10_000, options) == [(0, 60)]  # stops before cached bytes
    assert plan_fetches([(9_990, 10_000)], cache, 10_000, options) == [(9_990, 10_000)]


def test_reads_are_cached_and_near_reads_share_a_request(examples_server):
    options = RemoteOptions(tail_bytes=1024, min_fetch=4096, coalesce_gap=4096)
    source = RemoteSource(examples_server.url(L_NAME), options=options)
    assert source.requests == 1
    assert source.pread(0, 16)[:4] == b"PK\x03\x04"
    assert source.pread(100, 16) and source.pread(0, 4096)  # inside the read-ahead: no request
    assert source.requests == 2 == len(examples_server.log)
    expected = (EXAMPLES / L_NAME).read_bytes()
    assert source.pread(10_000, 50) == expected[10_000:10_050]
    assert source.requests == 3 and source.bytes_read == examples_server.bytes_sent


def test_scattered_reads_switch_to_one_download(examples_server):
    options = RemoteOptions(tail_bytes=1024, min_fetch=1024, coalesce_gap=0, max_range_requests=3)
    source = RemoteSource(examples_server.url(L_NAME), options=options, notify=lambda m: None)
    expected = (EXAMPLES / L_NAME).read_bytes()
    for offset in (0, 50_000, 100_000, 150_000, 200_000):
        assert source.pread(offset, 8) == expected[offset:offset + 8]
    assert [h.range for h in examples_server.log][-1] is None  # the last request: the whole file
    assert len(examples_server.log) == 5


def test_local_audits_do_not_import_requests(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from convnextpose_audit.cli import main; "
            f"main(['inspect', '--format', 'json', {str(EXAMPLES / L_NAME)!r}]); "
            "print('requests' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip().endswith("False")


def test_progress_line_only_on_a_terminal(examples_server):
    import os
    import subprocess
    import sys

    examples_server.behaviour.ranges = False
    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "convnextpose_audit", "inspect", "--format", "json",
                               examples_server.url("ConvNeXtPose_XS.tar")], stdout=subprocess.PIPE, stderr=slave,
                              timeout=60)
        os.close(slave)
        seen = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    assert b"downloading the whole file once" in seen
    assert b"\r" in seen and b"175.3 kB (100%)" in seen  # the progress line, drawn on the terminal only
