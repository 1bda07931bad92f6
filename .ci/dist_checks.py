"""Packaging checks for .ci/run: what the sdist holds, what the installed wheel holds, equal JSON.

Standard library only, so that it runs under any of the venvs .ci/run makes. Each subcommand prints
one line per problem and exits 1 if there was any.

  export DEST            copy the git-tracked files (as they are in the work tree) to DEST
  sdist-contents SDIST   the sdist holds every tracked file except NOT_SHIPPED, and nothing else
  installed-files DIR    every file of src/convnextpose_audit is in DIR (an installed package), same bytes
  json-equal A B         two JSON reports are equal once wall-clock fields are dropped
  pythons                the Python versions the classifiers in pyproject.toml claim, e.g. "3.11 3.12"
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Tracked files that are not part of the source distribution: CI plumbing only. Anything else a
#: test, the docs or a downstream packager could need ships; list a new non-shipping file here.
NOT_SHIPPED = (".ci/*", ".gitignore")

#: Files setuptools adds to every sdist.
GENERATED = ("PKG-INFO", "setup.cfg", "src/*.egg-info/*")

#: Report fields that measure the run rather than describe the files (see render/json.py).
WALL_CLOCK = ("seconds",)


def tracked() -> list[str]:
    """The git-tracked files that exist in the work tree, as POSIX paths relative to the repository."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p and (ROOT / p).is_file())


def export(dest: str) -> list[str]:
    """Copy the tracked files to ``dest``: a build from there sees no caches, venvs or build leftovers."""
    for rel in tracked():
        target = Path(dest, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    return []


def sdist_contents(sdist: str) -> list[str]:
    """Problems with the sdist: tracked files it lacks, and files it has that nobody tracks."""
    with tarfile.open(sdist) as tf:
        names = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile() and "/" in m.name}
    expected = {p for p in tracked() if not _matches(p, NOT_SHIPPED)}
    problems = [f"sdist lacks tracked file {p} (add it to MANIFEST.in, or to NOT_SHIPPED in .ci/dist_checks.py)"
                for p in sorted(expected - names)]
    problems += [f"sdist has untracked file {p}" for p in sorted(names - expected) if not _matches(p, GENERATED)]
    for must in ("tests/conftest.py", "examples/make_examples.py", "CHANGELOG.md", "LICENSE"):
        if must not in names:  # what a downstream packager needs to run the suite (also implied above)
            problems.append(f"sdist lacks {must}")
    return problems


def installed_files(package_dir: str) -> list[str]:
    """Problems with an installed package: files of src/convnextpose_audit it lacks or holds differently."""
    problems = []
    site = Path(package_dir).parent
    for rel in tracked():
        if rel.startswith("src/convnextpose_audit/"):
            installed = site / Path(rel).relative_to("src")
            if not installed.is_file():
                problems.append(f"the installed package lacks {rel} ({installed})")
            elif installed.read_bytes() != (ROOT / rel).read_bytes():
                problems.append(f"the installed {installed} differs from {rel}")
    return problems


def json_equal(a: str, b: str) -> list[str]:
    """Problems: the two reports differ somewhere other than their wall-clock fields."""
    left, right = (_without_wall_clock(json.loads(Path(p).read_text(encoding="utf-8"))) for p in (a, b))
    if left == right:
        return []
    lines_a, lines_b = (json.dumps(x, indent=1, sort_keys=True).splitlines() for x in (left, right))
    diff = list(difflib.unified_diff(lines_a, lines_b, a, b, lineterm="", n=2))
    return [f"{a} and {b} differ:", *diff[:60]]


def pythons() -> list[str]:
    """Print the ``3.N`` versions the trove classifiers claim (the CI runs the wheel on each it finds)."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [m.group(1) for c in meta.get("classifiers", ())
             if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))]
    print(" ".join(found))
    return [] if found else ["pyproject.toml claims no Python version"]


def _without_wall_clock(value):
    if isinstance(value, dict):
        return {k: _without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [_without_wall_clock(v) for v in value]
    return value


def _matches(path: str, patterns) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


COMMANDS = {"export": export, "sdist-contents": sdist_contents, "installed-files": installed_files,
            "json-equal": json_equal, "pythons": pythons}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    problems = COMMANDS[argv[0]](*argv[1:])
    for line in problems:
        print(line, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
