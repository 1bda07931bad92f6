"""The wheel ships every file of the package, and its metadata is the one version everything prints.

The wheel is built offline by the project's own build backend (setuptools, ``[build-system]``) from a
copy of the source, so the test sees what ``pip install`` would install, not the source tree.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "convnextpose_audit"
EXAMPLE = ROOT / "examples" / "drive" / "ConvNeXtPose_S.tar"
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def package_files() -> list[str]:
    """Every file under src/convnextpose_audit that an installed copy must have, as wheel names."""
    out = []
    for path in sorted(PACKAGE.rglob("*")):
        rel = path.relative_to(PACKAGE.parent)
        if path.is_file() and "__pycache__" not in rel.parts and path.suffix != ".pyc":
            out.append(rel.as_posix())
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel built by the setuptools backend, offline, from a copy of the project (top-level files + src/)."""
    src = tmp_path_factory.mktemp("project")
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy2(path, src / path.name)
    shutil.copytree(ROOT / "src", src / "src", ignore=JUNK)
    out = tmp_path_factory.mktemp("wheel")
    code = "import sys; from setuptools import build_meta as b; print(b.build_wheel(sys.argv[1]))"
    proc = subprocess.run([sys.executable, "-c", code, str(out)], cwd=src, capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, f"wheel build failed (needs setuptools>=77, the [test] extra):\n{proc.stderr[-3000:]}"
    name = proc.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(out / name) as zf:
        yield zf


def metadata(wheel: zipfile.ZipFile):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return HeaderParser().parsestr(wheel.read(name).decode("utf-8"))


def test_wheel_ships_every_package_file(wheel):
    expected = package_files()
    data = [n for n in expected if not n.endswith(".py")]
    assert "convnextpose_audit/variants.toml" in data  # the check below is not vacuous
    missing = sorted(set(expected) - set(wheel.namelist()))
    assert not missing, (f"not in the wheel: {missing}; add their pattern to "
                         "[tool.setuptools.package-data] in pyproject.toml")


def test_version_is_one_string_everywhere(wheel):
    version = metadata(wheel)["Version"]
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc)?\d*", version)
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"cnxp-audit, version {version}"
    report = json.loads(run_cli("inspect", "--format", "json", EXAMPLE).stdout)
    assert report["tool"] == {"name": "cnxp-audit", "version": version}
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{version}]" in changelog and "## [Unreleased]" in changelog


def test_license_is_spdx_with_its_file(wheel):
    meta = metadata(wheel)
    assert tuple(map(int, meta["Metadata-Version"].split("."))) >= (2, 4)  # the first with License-Expression
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    (licence,) = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(licence) == (ROOT / "LICENSE").read_bytes()
    # PEP 639: an SPDX expression replaces the License :: classifiers (setuptools rejects both).
    assert not [c for c in meta.get_all("Classifier") if c.startswith("License ::")]


def test_classifiers_agree_with_requires_python(wheel):
    meta = metadata(wheel)
    oldest = re.fullmatch(r">=3\.(\d+)", meta["Requires-Python"])
    assert oldest, meta["Requires-Python"]
    minors = sorted(int(c.rsplit(".", 1)[1]) for c in meta.get_all("Classifier")
                    if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert minors and minors[0] == int(oldest.group(1))
    assert minors == list(range(minors[0], minors[-1] + 1))  # no gap in the versions claimed


def test_project_urls_and_entry_point(wheel):
    meta = metadata(wheel)
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert set(urls) == {"Homepage", "Issues", "Changelog"}
    assert all(u.startswith(urls["Homepage"]) for u in urls.values())
    (entry_points,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    assert "cnxp-audit = convnextpose_audit.cli:main" in wheel.read(entry_points).decode()
    assert meta["Description-Content-Type"] == "text/markdown"
