"""Auditing at scale: audit_url as a pure url -> records call, and the README's dask example, run as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from http_server import LocalServer

from convnextpose_audit.hub import audit_url

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "drive"


@pytest.fixture
def server():
    with LocalServer({p.name: p for p in EXAMPLES.iterdir()}) as srv:
        yield srv


def test_audit_url_returns_plain_records_and_never_raises(server):
    [record] = audit_url(server.url("ConvNeXtPose_L_mirror.tar"))
    assert (record["verdict"], record["declared"], record["inferred"], record["exit_code"]) == ("MISMATCH", "L", "M", 1)
    assert record["requests"] == len(server.log) and record["bytes_read"] == server.bytes_sent
    [missing] = audit_url(server.url("gone.tar"))
    assert missing["verdict"] == "UNREADABLE" and "HTTP 404" in missing["error"] and missing["exit_code"] == 3
    [local] = audit_url(str(EXAMPLES / "ConvNeXtPose_S.tar"))
    assert local["verdict"] == "MATCH" and local["bytes_read"] is None


def test_readme_dask_example_runs_on_a_local_cluster(server, tmp_path):
    pytest.importorskip("dask.bag")
    pytest.importorskip("distributed")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- hub-example -->\n```python\n(.*?)```", readme, re.S).group(1)
    names = [p.name for p in sorted(EXAMPLES.iterdir())] + ["gone.tar"]
    (tmp_path / "urls.txt").write_text("".join(server.url(n) + "\n" for n in names))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = sorted(proc.stdout.splitlines())
    assert lines == sorted([f"MISMATCH {server.url('ConvNeXtPose_L_mirror.tar')} L -> M",
                            f"UNREADABLE {server.url('gone.tar')} {server.url('gone.tar')}: HTTP 404 Not Found"])
    audited = {h.path for h in server.log}
    assert audited == set(names)  # every URL was fetched by the cluster's workers
