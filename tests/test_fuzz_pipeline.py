"""The whole pipeline under hypothesis, in a child process with a memory cap and a watchdog.

read -> walk -> fingerprint -> hash -> audit -> diff -> render in every format, and the
command line on the same bytes (fuzz/pipeline.py). The child (fuzz/fuzz_reader.py)
is killed by its own watchdog past 512 MiB of resident memory and fails an input past
10 s; any exception other than the typed errors, any undocumented exit code or any
traceback is a failure. Seeds: the valid files of tests/test_fuzz.py and the hostile
corpus. The in-suite budget is small and fixed (derandomized); CNXP_FUZZ_EXAMPLES=N runs
N random examples instead (the long run of fuzz/README.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.security

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("CNXP_FUZZ_EXAMPLES", "0"))


def test_whole_pipeline_under_hypothesis():
    args = ["--hypothesis", str(EXAMPLES or 150), "--rss-mb", "512", "--seconds", "10"]
    if not EXAMPLES:
        args.append("--derandomize")  # the suite runs the same examples every time
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "fuzz" / "fuzz_reader.py"), *args], capture_output=True,
                          text=True, env=env, timeout=max(300, EXAMPLES), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "fuzz: " in proc.stderr  # it ran, and said how much
