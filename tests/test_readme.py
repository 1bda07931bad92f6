"""Docs that run: every console example in README is executed and must print what README shows.

Rules, so that README stays readable:
- In a ```` ```console ```` block, a line starting with ``$ `` is a command (run by bash from the
  repository root, ``cnxp-audit`` being this checkout); the lines after it, up to the next
  command, are its expected stdout.
- A command shown alone in its block takes its output from the ``<!-- output -->`` …
  ``<!-- /output -->`` region right after the block (markdown shown rendered).
- A line ``…`` (indented or not) in the expected output stands for any number of lines.
- Wall-clock times (``0.08 s``, ``12 ms``) are normalised before comparing.
- The 80-column table after ``<!-- table-80: … -->`` is what the table renderer draws.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
OUTPUT = re.compile(r"\s*<!-- output -->\n(.*?)<!-- /output -->", re.S)
TIME = re.compile(r"\b\d+(?:\.\d+)? (s|ms)\b")


def console_examples(text: str) -> list[tuple[str, str | None]]:
    """``(command, expected stdout)`` for every ``$ `` line of every console block (None: no output shown)."""
    examples = []
    for block in FENCE.finditer(text):
        if block.group(1) != "console":
            continue
        current: list | None = None
        for line in block.group(2).splitlines():
            if line.startswith("$ "):
                current = [line[2:], []]
                examples.append(current)
            elif current is not None:
                current[1].append(line)
        if current is not None and not current[1]:
            after = OUTPUT.match(text, block.end())
            current[1] = after.group(1).strip("\n").splitlines() if after else None
    return [(cmd, None if lines is None else "\n".join(lines)) for cmd, lines in examples]


def normalise(text: str) -> str:
    """Times replaced, trailing blanks and blank lines at the end dropped."""
    lines = [TIME.sub(r"<t> \1", line).rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def matches(expected: str, actual: str) -> bool:
    """``expected`` equals ``actual`` line for line, where a line ``…`` stands for any lines."""
    lines = normalise(expected).split("\n")
    pattern = "".join("(?:.*\n)*?" if line.strip() == "…" else re.escape(line) + "\n" for line in lines)
    return re.fullmatch(pattern, normalise(actual) + "\n") is not None


def run(command: str) -> subprocess.CompletedProcess:
    """Run a README command in bash at the repository root, with this checkout as cnxp-audit."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "LC_ALL": "C", "CNXP_PYTHON": sys.executable}  # C: globs expand in a fixed order
    env.pop("NO_COLOR", None)
    script = 'cnxp-audit() { "$CNXP_PYTHON" -m convnextpose_audit "$@"; }\n' + command
    return subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


EXAMPLES = console_examples(README)


def test_readme_has_console_examples():
    assert len(EXAMPLES) >= 5  # a parser that found nothing must not pass silently
    assert all(cmd.startswith("cnxp-audit ") for cmd, _ in EXAMPLES)


def test_set_up_commands_come_first():
    blocks = [b.group(2) for b in FENCE.finditer(README)]
    assert blocks[0].strip() == "pip install -e . && cnxp-audit inspect examples/drive/*"
    assert blocks[1].strip().startswith("pip install -e '.[test]' && python -m pytest")


@pytest.mark.parametrize("command, expected", EXAMPLES, ids=[cmd for cmd, _ in EXAMPLES])
def test_console_example(command, expected):
    assert expected is not None, "a console example must show its output"
    if " verify " in f" {command} ":
        pytest.importorskip("torch", reason="verify needs the torch extra")
    result = run(command)
    assert "Traceback" not in result.stderr, result.stderr
    assert matches(expected, result.stdout), f"README shows:\n{expected}\n\nthe command prints:\n{result.stdout}"


def test_table_example_is_what_an_80_column_terminal_shows():
    marker = re.search(r"<!-- table-80: cnxp-audit inspect (\S+) -->\n```text\n(.*?)```", README, re.S)
    assert marker, "README lost its 80-column table example"
    from convnextpose_audit.audit import audit_paths
    from convnextpose_audit.render.base import RenderOptions
    from convnextpose_audit.render.formats import get_format
    from convnextpose_audit.variants import load_registry

    pattern = marker.group(1)
    paths = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob(pattern))
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        report = audit_paths(paths, load_registry())
    finally:
        os.chdir(cwd)
    table = get_format("table").render(report, RenderOptions(width=80))
    assert normalise(marker.group(2)) == normalise(table)


def test_matching_rules():
    assert matches("a\n…\nz", "a\nb\nc\nz\n") and matches("a\n…\nz", "a\nz")
    assert not matches("a\nz", "a\nb\nz")
    assert matches("1 file, 2 B in 0.01 s: 1 MATCH", "1 file, 2 B in 12.30 s: 1 MATCH\n")
    assert not matches("exit code 0", "exit code 1")
