"""Terminal-safe output: file-controlled text never reaches a terminal, a pipe or markdown raw.

Every hostile file here is built by hand (no torch), so these tests never skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import unicodedata
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from conftest import run_cli
from convnextpose_audit.render.base import RenderOptions
from convnextpose_audit.render.escape import md_code, safe
from convnextpose_audit.render.formats import get_format
from convnextpose_audit.scan import scan
from convnextpose_audit.variants import load_registry
from fixtures.hostile import clean_data_pkl, outer, torch_zip
from fixtures.pickle_ops import glob, s, stop, tup

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "drive"

CURSOR_UP = "\x1b[1A"
ERASE_LINE = "\x1b[2K"
OSC52 = "\x1b]52;c;ZXZpbA==\x07"  # writes "evil" to the clipboard
CSI_C1 = "\x9b31m"  # the one-byte C1 CSI
BIDI = "\u202e"  # right-to-left override: "rat.exe" shows as "exe.tar"
HOSTILE = CURSOR_UP + ERASE_LINE + OSC52 + CSI_C1 + BIDI


@pytest.mark.parametrize("raw, shown", [
    ("a\x1b[1Ab", "a\\x1b[1Ab"),
    ("\x1b]52;c;ZXZpbA==\x07", "\\x1b]52;c;ZXZpbA==\\x07"),
    ("x\x9b31m", "x\\x9b31m"),
    ("gpj\u202eexe", "gpj\\u202eexe"),
    ("a\u2066b\u2069", "a\\u2066b\\u2069"),
    ("tab\there\nnew\rline", "tab\\there\\nnew\\rline"),
    ("nul\x00del\x7f", "nul\\x00del\\x7f"),
    ("zero\u200bwidth", "zero\\u200bwidth"),
    ("raw\udcffbyte", "raw\\xffbyte"),  # a non-UTF-8 byte of a file name (surrogateescape)
    ("private\U000f0000use", "private\\U000f0000use"),
    ("ConvNeXtPose_L (1).tar", "ConvNeXtPose_L (1).tar"),
    ("名前 é ß → ×", "名前 é ß → ×"),
])
def test_safe_shows_every_non_printable_character_escaped(raw, shown):
    assert safe(raw) == shown


def _printable_only(text: str) -> None:
    """No character of a category a terminal could act on: controls, format characters, surrogates..."""
    bad = {ch for ch in text if ch != "\n" and unicodedata.category(ch)[0] in "CZ" and ch != " "}
    assert not bad, sorted(map(hex, map(ord, bad)))


@pytest.mark.parametrize("text", ["[x](https://evil.example)", "![i](https://evil.example/i.png)",
                                  "<img src=x onerror=alert(1)>", "@octocat #1", "a|b", "`tick`", "``",
                                  "*em* _em_ ~~s~~", "a\\|b"])
def test_md_code_is_inert_inside_a_table(text):
    """A GFM parser finds one table cell per column and no link, image, HTML or emphasis in it."""
    source = f"| a | b |\n|---|---|\n| {md_code(text)} | x |\n"
    tokens = MarkdownIt("commonmark").enable("table").parse(source)
    inline = [t for t in tokens if t.type == "inline"]
    assert len(inline) == 4  # two header cells, two body cells
    children = inline[2].children
    assert [c.type for c in children] == ["code_inline"]
    assert children[0].content == text


# --------------------------------------------------------------------------- hostile files, end to end
def _hostile_key_pkl() -> bytes:
    """The clean ``{'network': {'w': float32[4]}}`` with a state-dict key full of escape sequences."""
    return clean_data_pkl().replace(s("w"), s("w" + HOSTILE))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A folder of files whose names, member names, keys and globals carry terminal escapes."""
    folder = tmp_path_factory.mktemp("hostile-names")
    shutil.copy(EXAMPLES / "ConvNeXtPose_S.tar", folder / f"ConvNeXtPose_S{HOSTILE}.tar")
    shutil.copy(EXAMPLES / "ConvNeXtPose_XS.tar", os.path.join(os.fsencode(folder), b"XS\x9b\xff.tar"))
    (folder / "key.pth").write_bytes(torch_zip(_hostile_key_pkl(), {"0": bytes(16)}))
    unsafe = stop(glob("os" + OSC52, "system" + CURSOR_UP) + tup(s("true")) + b"R")
    (folder / "unsafe.pth").write_bytes(torch_zip(unsafe))
    (folder / "outer.zip").write_bytes(outer({f"notes{ERASE_LINE}.txt": b"hello",
                                              f"inner{CURSOR_UP}.pth": torch_zip(clean_data_pkl(), {"0": bytes(16)})}))
    return folder


def _scan(folder: Path):
    from convnextpose_audit.audit import AuditOptions

    return scan([str(folder)], load_registry(), options=AuditOptions(tensors=True))


@pytest.mark.security
@pytest.mark.parametrize("fmt", ["text", "markdown", "table"])
def test_every_human_format_escapes_hostile_names(hostile, fmt):
    report = _scan(hostile)
    assert {r.verdict.value for r in report.files} >= {"UNSAFE"}
    out = get_format(fmt).render(report, RenderOptions(verbose=True, width=100))
    _printable_only(out)
    for raw in (CURSOR_UP, ERASE_LINE, OSC52, BIDI):
        assert raw not in out
    assert "\\x1b[1A" in out and "\\x1b]52;c;ZXZpbA==\\x07" in out and "\\u202e" in out and "\\x9b\\xff" in out
    assert "w\\x1b[1A" in out  # the state-dict key, in the tensor listing
    assert "notes\\x1b[2K.txt" in out  # a skipped member's name, under -v


@pytest.mark.security
def test_colour_table_emits_only_its_own_sgr_sequences(hostile):
    out = get_format("table").render(_scan(hostile), RenderOptions(verbose=True, width=100, color=True))
    assert "\x1b[" in out  # colour is on
    _printable_only(re.sub(r"\x1b\[[0-9;]*m", "", out))  # and nothing else is a control


@pytest.mark.security
def test_tensors_and_diff_escape_keys(hostile):
    listing = run_cli("tensors", hostile / "key.pth")
    assert listing.exit_code == 0
    assert "w\\x1b[1A" in listing.stdout
    _printable_only(listing.stdout)
    diff = run_cli("diff", "-v", hostile / "key.pth", EXAMPLES / "ConvNeXtPose_S.tar")
    assert diff.exit_code == 1 and "w\\x1b[1A" in diff.stdout
    _printable_only(diff.stdout)


@pytest.mark.security
def test_diagnostics_on_stderr_are_escaped(hostile):
    result = run_cli("diff", hostile / f"missing{OSC52}.pth", hostile / "key.pth")
    assert result.exit_code == 3
    assert OSC52 not in result.stderr and "\\x1b]52" in result.stderr


@pytest.mark.security
def test_json_keeps_names_exact(hostile):
    report = json.loads(run_cli("scan", "--format", "json", "--tensors", hostile).stdout)
    paths = {e["path"] for e in report["files"]}
    assert str(hostile / f"ConvNeXtPose_S{HOSTILE}.tar") in paths
    assert os.fsdecode(os.path.join(os.fsencode(hostile), b"XS\x9b\xff.tar")) in paths
    keys = [t["name"] for e in report["files"] if e["path"].endswith("key.pth") for t in e["tensors"]]
    assert keys == ["w" + HOSTILE]
    unsafe = next(e for e in report["files"] if e["path"].endswith("unsafe.pth"))
    assert unsafe["verdict"] == "UNSAFE"


def test_verify_output_is_escaped(tmp_path, torch):
    """verify prints the path and torch's list of keys (torch extra)."""
    path = tmp_path / f"ConvNeXtPose_S{OSC52}.tar"
    shutil.copy(EXAMPLES / "ConvNeXtPose_S.tar", path)
    result = run_cli("verify", path, "--variant", "L")
    assert result.exit_code == 1
    assert OSC52 not in result.stdout and "\\x1b]52;c;ZXZpbA==\\x07" in result.stdout
    _printable_only(result.stdout)


@pytest.mark.security
def test_the_hostile_corpus_renders_safely_in_every_format(tmp_path):
    """Whatever the reader accepted (huge ints, odd names, bombs refused...) renders, escaped."""
    from convnextpose_audit.audit import AuditOptions
    from fixtures.hostile import build_corpus

    build_corpus(tmp_path / "corpus", tmp_path / "SENTINEL")
    report = scan([str(tmp_path / "corpus")], load_registry(), options=AuditOptions(tensors=True))
    assert len(report.files) >= 50
    for name in ("table", "text", "markdown"):
        for width, color in ((80, False), (200, True)):
            out = get_format(name).render(report, RenderOptions(verbose=True, width=width, color=color))
            _printable_only(re.sub(r"\x1b\[[0-9;]*m", "", out) if color and name == "table" else out)
    assert not (tmp_path / "SENTINEL").exists()
