"""The pre-commit hook (.pre-commit-hooks.yaml), run for real with ``pre-commit try-repo``.

Offline by construction: pre-commit builds the hook's virtualenv with ``pip install .`` of this
checkout, so the test tells pip to use no index, no build isolation and no dependencies
(PIP_NO_INDEX, PIP_NO_BUILD_ISOLATION=0, PIP_NO_DEPS) and lends the hook the test
interpreter's installed packages (click, rich, requests...) through PYTHONPATH. Everything
else — file selection by ``types``/``files``, the entry command, pass/fail — is pre-commit's own.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import hostile
from fixtures.pickle_ops import glob, s, stop, tup

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "drive"

pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="try-repo needs this checkout to be a git repo")


@pytest.fixture(scope="module")
def hook_env(tmp_path_factory):
    pytest.importorskip("pre_commit")
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
                "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    return dict(os.environ, PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
                PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_NO_DEPS="1",
                PYTHONPATH=os.pathsep.join(site.getsitepackages()), **identity)


def try_repo(repo: Path, env: dict) -> subprocess.CompletedProcess:
    """Stage everything in ``repo`` and run the hook on the staged files, as a commit would."""
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "cnxp-audit"],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def new_repo(tmp_path: Path, env: dict, files: dict[str, Path | bytes]) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    for name, content in files.items():
        if isinstance(content, Path):
            shutil.copy(content, repo / name)
        else:
            (repo / name).write_bytes(content)
    return repo


def test_hook_fails_on_a_mislabeled_checkpoint(tmp_path, hook_env):
    repo = new_repo(tmp_path, hook_env, {"ConvNeXtPose_L.tar": EXAMPLES / "ConvNeXtPose_L_mirror.tar",
                                         "ConvNeXtPose_S.tar": EXAMPLES / "ConvNeXtPose_S.tar"})
    proc = try_repo(repo, hook_env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Failed" in proc.stdout and "MISMATCH" in proc.stdout
    assert "ConvNeXtPose_S.tar" not in proc.stdout.split("Failed", 1)[1]  # -q: only failing rows


def test_hook_fails_on_unsafe_and_unreadable(tmp_path, hook_env):
    evil = hostile.torch_zip(stop(glob("os", "system") + tup(s("true")) + b"R"))
    broken = (EXAMPLES / "ConvNeXtPose_S.tar").read_bytes()[:40_000]
    repo = new_repo(tmp_path, hook_env, {"evil.pth": evil, "broken.pt": broken})
    proc = try_repo(repo, hook_env)
    assert proc.returncode == 1 and "UNSAFE" in proc.stdout and "UNREADABLE" in proc.stdout


def test_hook_passes_good_files_and_ignores_text(tmp_path, hook_env):
    repo = new_repo(tmp_path, hook_env, {"ConvNeXtPose_XS.tar": EXAMPLES / "ConvNeXtPose_XS.tar",
                                         "resnet.pth": EXAMPLES / "posenet_resnet50.pth",  # UNKNOWN, unlabelled
                                         "notes.pth": b"not a checkpoint, just text\n", "README.md": b"# models\n"})
    proc = try_repo(repo, hook_env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Passed" in proc.stdout


def test_hook_skips_when_no_checkpoint_is_staged(tmp_path, hook_env):
    repo = new_repo(tmp_path, hook_env, {"train.py": b"print('hi')\n", "notes.pth": b"text, not binary\n"})
    proc = try_repo(repo, hook_env)
    assert proc.returncode == 0 and "no files to check" in proc.stdout
