"""CI fails when a security test is skipped: the conftest hook, checked on throwaway test files in a child pytest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.security
TESTS = Path(__file__).resolve().parent

CASES = {
    "skip in the test": ("import pytest\n\n@pytest.mark.security\ndef test_x():\n    pytest.skip('no torch')\n", 1),
    "importorskip in a fixture": ("import pytest\n\n@pytest.fixture\ndef torch():\n"
                                  "    return pytest.importorskip('no_such_module_here')\n\n"
                                  "@pytest.mark.security\ndef test_x(torch):\n    pass\n", 1),
    "skipif marker": ("import pytest\n\n@pytest.mark.security\n@pytest.mark.skipif(True, reason='r')\n"
                      "def test_x():\n    pass\n", 1),
    "module skipped at collection": ("import pytest\npytestmark = pytest.mark.security\n"
                                     "pytest.importorskip('no_such_module_here')\n\ndef test_x():\n    pass\n", 1),
    "an ordinary test may skip": ("import pytest\n\ndef test_x():\n    pytest.skip('fine')\n", 0),
    "an expected failure stays one": ("import pytest\n\n@pytest.mark.security\n@pytest.mark.xfail(strict=True)\n"
                                      "def test_x():\n    assert False\n", 0),
}


def run_pytest(folder: Path, require: bool) -> subprocess.CompletedProcess:
    (folder / "conftest.py").write_text((TESTS / "conftest.py").read_text())  # the hooks under test
    env = {**os.environ, "CNXP_REQUIRE_SECURITY": "1" if require else "0",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          capture_output=True, text=True, env=env, cwd=folder, timeout=120)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_skipped_security_test_fails_the_run(tmp_path, case):
    source, expected = CASES[case]
    (tmp_path / "test_case.py").write_text(source)
    required = run_pytest(tmp_path, require=True)
    assert (required.returncode != 0) == bool(expected), required.stdout[-2000:]
    if expected:  # a failed test (exit 1), or a module that fails to collect (exit 2)
        assert "a security test was skipped" in required.stdout
    assert run_pytest(tmp_path, require=False).returncode in (0, 5)  # without it a skip is a skip (5: none ran)
