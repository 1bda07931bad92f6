"""Tensors are bounded by their logical size, and everything that reads values streams them.

A stride-0 view of one stored float claims 2**28 elements (1 GiB of float32). ``--hash``
and ``diff`` must stream it through bounded memory; ``convert`` must refuse to write the
expansion. Built by hand (no torch), so these run everywhere.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys

import pytest

from conftest import run_cli
from fixtures.hostile import torch_zip
from fixtures.pickle_ops import glob, i, s, stop, tup

pytestmark = pytest.mark.security  # builds hostile inputs by hand: never skipped

N = 1 << 28  # elements claimed by the view
VALUE = 1.5


def strided_data_pkl(n: int, stride: int, numel: int) -> bytes:
    """{'network': OrderedDict(w=<view of storage '0' with shape (n,) and stride (stride,)>)}."""
    storage = tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(numel))
    tensor = glob("torch._utils", "_rebuild_tensor_v2") + tup(
        storage + b"Q", i(0), tup(i(n)), tup(i(stride)), b"\x89", glob("collections", "OrderedDict") + b")R") + b"R"
    return stop(b"}" + s("network") + glob("collections", "OrderedDict") + b")R" + s("w") + tensor + b"ss")


@pytest.fixture
def expanded(tmp_path):
    path = tmp_path / "expanded.pth"
    path.write_bytes(torch_zip(strided_data_pkl(N, 0, 1), {"0": struct.pack("<f", VALUE)}))
    return path


def _peak_rss_mib(args: list[str]) -> tuple[int, str, float]:
    code = ("import resource, sys\n"
            "from convnextpose_audit.cli import main\n"
            "rc = main(sys.argv[1:])\n"
            "peak = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
            "sys.stderr.write(f'\\nPEAK {peak}\\n')\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    peak = int(proc.stderr.rsplit("PEAK ", 1)[1].split()[0]) / 1024
    return proc.returncode, proc.stdout, peak


def test_hash_streams_a_stride_zero_view(expanded):
    expected = hashlib.sha256()
    block = struct.pack("<f", VALUE) * (1 << 20)
    for _ in range(N >> 20):
        expected.update(block)
    code, out, peak = _peak_rss_mib(["inspect", "--format", "json", "--hash", str(expanded)])
    assert code == 0, out
    digests = json.loads(out)["files"][0]["digest"]["tensors"]
    assert list(digests.values()) == [expected.hexdigest()]
    assert peak < 256, f"peak RSS {peak:.0f} MiB hashing a 1 GiB view of 4 bytes"


def test_diff_streams_a_stride_zero_view(expanded, tmp_path):
    other = tmp_path / "other.pth"
    other.write_bytes(torch_zip(strided_data_pkl(N, 0, 1), {"0": struct.pack("<f", VALUE + 1)}))
    code, out, peak = _peak_rss_mib(["diff", "--format", "json", str(expanded), str(other)])
    assert code == 1
    tensors = json.loads(out)["tensors"]
    assert tensors[0]["identical"] is False and tensors[0]["max_abs"] == 1.0
    assert peak < 256, f"peak RSS {peak:.0f} MiB comparing two 1 GiB views"


def test_convert_refuses_the_expansion(expanded, tmp_path):
    out = tmp_path / "out.safetensors"
    result = run_cli("convert", expanded, out)
    assert result.exit_code == 2 and "max_output_expansion" in result.stderr
    assert not out.exists()


def test_a_view_over_the_size_limit_is_refused(tmp_path):
    path = tmp_path / "huge.pth"
    path.write_bytes(torch_zip(strided_data_pkl(1 << 40, 0, 1), {"0": struct.pack("<f", VALUE)}))  # 4 TiB
    result = run_cli("inspect", "--format", "json", path)
    entry = json.loads(result.stdout)["files"][0]
    assert result.exit_code == 3 and entry["verdict"] == "UNREADABLE" and "max_storage_bytes" in entry["error"]
