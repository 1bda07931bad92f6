"""The renderer registry and the human formats: text for pipes, one summary line, --hash, --tensors,
quiet, markdown sections, and the tensors command. Inputs are the committed examples (no torch)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from conftest import run_cli
from convnextpose_audit.audit import AuditOptions, audit_paths
from convnextpose_audit.cli.options import FORMATS as CLI_FORMATS
from convnextpose_audit.render.base import Format, RenderOptions
from convnextpose_audit.render.formats import FORMATS, get_format
from convnextpose_audit.variants import load_registry
from zip_tools import patch_central

ROOT = Path(__file__).resolve().parent.parent
DRIVE = ROOT / "examples" / "drive"
FILES = sorted(DRIVE.iterdir())
#: By construction (examples/make_examples.py): the mirror holds M's weights under an L name.
VERDICTS = {"ConvNeXtPose_L (1).tar": "MATCH", "ConvNeXtPose_L_mirror.tar": "MISMATCH",
            "ConvNeXtPose_M (1).tar": "MATCH", "ConvNeXtPose_S.tar": "MATCH", "ConvNeXtPose_XS.tar": "MATCH",
            "posenet_resnet50.pth": "UNKNOWN"}
SUMMARY = re.compile(r"^\d+ files?, .* in \d+\.\d\d s: .*; exit code \d+$")
HUMAN = ("table", "text", "markdown")


def _no_time(out: str) -> str:
    return re.sub(r"in \d+\.\d\d s:", "in T s:", out)


def _summary(out: str) -> str:
    lines = [line for line in out.splitlines() if SUMMARY.match(line)]
    assert len(lines) == 1, out
    return lines[0]


# --------------------------------------------------------------------------- registry
def test_every_registered_format_is_a_format_class_and_a_cli_choice():
    assert set(FORMATS) >= {"table", "text", "markdown", "json"}
    assert tuple(FORMATS) == CLI_FORMATS  # --format offers exactly the registry
    for name in FORMATS:
        fmt = get_format(name)
        assert isinstance(fmt, Format) and fmt.name == name


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_renderers_are_pure(name):
    """They return text; they print nothing and never exit."""
    report = audit_paths([str(p) for p in FILES], load_registry())
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        text = get_format(name).render(report, RenderOptions(verbose=True))
    assert isinstance(text, str) and text.endswith("\n")
    assert out.getvalue() == "" and err.getvalue() == ""


# --------------------------------------------------------------------------- text for pipes
def test_piped_table_is_one_plain_line_per_file():
    result = run_cli("inspect", *FILES)  # CliRunner's stdout is not a terminal
    assert result.exit_code == 1
    explicit = run_cli("inspect", "--format", "text", *FILES).stdout
    assert _no_time(result.stdout) == _no_time(explicit)
    lines = result.stdout.splitlines()
    assert not any("\u2500" <= ch <= "\u257f" for ch in result.stdout)  # no box drawing
    rows = lines[:-1]
    assert len(rows) == len(FILES)
    for line, path in zip(rows, FILES):
        verdict, transition, rest = line.split(maxsplit=2)
        assert verdict == VERDICTS[path.name]
        assert re.fullmatch(r"[^ ]+->[^ ]+", transition)
        assert rest.startswith(str(path) + "  ")  # the whole path, as given, never wrapped


def test_grep_mismatch_gives_whole_lines():
    out = run_cli("inspect", *FILES).stdout
    hits = [line for line in out.splitlines() if "MISMATCH" in line]
    assert len(hits) == 2  # the row and the summary's count
    row = hits[0]
    assert row.startswith("MISMATCH") and "L->M" in row
    assert str(DRIVE / "ConvNeXtPose_L_mirror.tar") in row
    assert row.endswith("head widths 256,256,256 vs 512,512,512")  # paper: M's head is 256 wide, L's 512


def test_text_awk_fields_are_stable_with_verbose_and_hash():
    out = run_cli("inspect", "-v", "--hash", *FILES).stdout
    rows = [line for line in out.splitlines() if line.split(maxsplit=1)[0] in VERDICTS.values()]
    assert [r.split()[0] for r in rows] == [VERDICTS[p.name] for p in FILES]
    assert all(re.fullmatch(r"[0-9a-f]{8}", r.split()[2]) for r in rows)  # the short digest, third field


# --------------------------------------------------------------------------- summary line
def test_summary_line_is_identical_in_every_human_format():
    report = audit_paths([str(p) for p in FILES], load_registry())
    lines = {name: _summary(get_format(name).render(report, RenderOptions(width=120))) for name in HUMAN}
    assert len(set(lines.values())) == 1
    line = lines["text"]
    assert line.startswith("6 files, 1.1 MB in ")
    assert line.endswith(": 4 MATCH, 1 MISMATCH, 1 UNKNOWN; exit code 1")


@pytest.mark.parametrize("fmt", HUMAN)
def test_summary_counts_the_whole_run_under_quiet(fmt):
    result = run_cli("inspect", "-q", "--format", fmt, *FILES)
    assert result.exit_code == 1
    assert _summary(result.stdout).endswith("4 MATCH, 1 MISMATCH, 1 UNKNOWN; exit code 1")
    assert "ConvNeXtPose_L_mirror.tar" in result.stdout
    assert "ConvNeXtPose_XS.tar" not in result.stdout  # a passing row is hidden


def test_summary_exit_code_follows_fail_on():
    result = run_cli("inspect", "--fail-on", "none", *FILES)
    assert result.exit_code == 0 and _summary(result.stdout).endswith("; exit code 0")


def test_scan_summary_counts_skipped_files():
    result = run_cli("scan", ROOT / "examples")
    skipped = json.loads(run_cli("scan", "--format", "json", ROOT / "examples").stdout)["summary"]["skipped"]
    assert skipped and f"; {len(skipped)} skipped; " in _summary(result.stdout)


# --------------------------------------------------------------------------- --hash and --tensors
@pytest.mark.parametrize("fmt", HUMAN)
def test_hash_shows_digests_and_same_weights(fmt):
    report = audit_paths([str(p) for p in FILES], load_registry(), options=AuditOptions(hashes=True))
    out = get_format(fmt).render(report, RenderOptions(width=200))
    digests = {r.path: r.digest["state_dict"][:8] for r in report.files}
    assert all(d in out for d in digests.values())
    mirror, m = str(DRIVE / "ConvNeXtPose_L_mirror.tar"), str(DRIVE / "ConvNeXtPose_M (1).tar")
    assert digests[mirror] == digests[m]  # same weights by construction
    assert f"{m}: same weights as {mirror}" in out


@pytest.mark.parametrize("fmt", HUMAN)
def test_tensors_listing_in_every_human_format(fmt):
    result = run_cli("inspect", "--tensors", "--format", fmt, DRIVE / "ConvNeXtPose_XS.tar")
    assert result.exit_code == 0
    # XS: head width 128, final_layer 18 joints × 32 depth bins = 576 out channels (paper, Table 4).
    line = next(line for line in result.stdout.splitlines() if "module.head.final_layer.weight" in line)
    assert "float32" in line and "[576,128,1,1]" in line and re.search(r"\b73,?728\b", line)


def test_tensors_command_lists_and_filters():
    xs = DRIVE / "ConvNeXtPose_XS.tar"
    full = run_cli("tensors", xs)
    assert full.exit_code == 0
    assert full.stdout.splitlines()[0].startswith(f"{xs}: zip, state dict 'network', prefix 'module.', 194 tensors")
    assert len(full.stdout.splitlines()) == 1 + 194
    some = run_cli("tensors", "--match", "head.final_layer.*", xs)  # matches without the module. prefix
    lines = some.stdout.splitlines()
    assert "2 of 194 tensors" in lines[0]
    assert [line.split()[-1] for line in lines[1:]] == ["module.head.final_layer.weight",
                                                        "module.head.final_layer.bias"]
    data = json.loads(run_cli("tensors", "--format", "json", "--match", "*.bias", xs).stdout)
    assert data["schema_version"] == 1
    assert data["files"][0]["tensors"] and all(t["name"].endswith(".bias") for t in data["files"][0]["tensors"])


def test_tensors_command_exit_codes(tmp_path):
    broken = tmp_path / "broken.pth"
    broken.write_bytes((DRIVE / "ConvNeXtPose_S.tar").read_bytes()[:3000])
    assert run_cli("tensors", DRIVE / "ConvNeXtPose_L_mirror.tar").exit_code == 0  # a listing does not judge labels
    result = run_cli("tensors", broken)
    assert result.exit_code == 3 and "UNREADABLE" in result.stdout


# --------------------------------------------------------------------------- markdown
def _crc_warning_file(folder: Path) -> Path:
    data = patch_central((DRIVE / "ConvNeXtPose_S.tar").read_bytes(), "/data.pkl", 16, "<L", 0xDEADBEEF)
    path = folder / "ConvNeXtPose_S_badcrc.tar"
    path.write_bytes(data)
    return path


def test_markdown_verbose_keeps_skipped_out_of_the_file_lists_and_shows_warnings(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(DRIVE / "ConvNeXtPose_XS.tar", folder)
    _crc_warning_file(folder)
    (folder / "notes.txt").write_text("not a checkpoint\n")
    out = run_cli("scan", "-v", "--format", "markdown", folder).stdout
    tokens = MarkdownIt("commonmark").enable("table").parse(out)
    # Walk the block structure: every bullet list follows a bold paragraph naming what it lists.
    lists, heading = {}, None
    for i, t in enumerate(tokens):
        if t.type == "inline" and tokens[i - 1].type == "paragraph_open" and t.map and t.content.startswith("**"):
            heading = t.content
        if t.type == "inline" and tokens[i - 1].type == "paragraph_open" and tokens[i - 2].type == "list_item_open":
            lists.setdefault(heading, []).append(t.content)
    skipped_head = next(head for head in lists if head.startswith("**skipped"))
    assert len(lists[skipped_head]) == 1 and "notes.txt" in lists[skipped_head][0]
    badcrc = next(items for head, items in lists.items() if "badcrc" in head)
    assert any(item.startswith("warning:") and "CRC" in item for item in badcrc)
    others = [item for head, items in lists.items() if head != skipped_head for item in items]
    assert others and not any("notes.txt" in item for item in others)


def test_table_and_text_show_the_crc_warning_under_verbose(tmp_path):
    path = _crc_warning_file(tmp_path)
    report = audit_paths([str(path)], load_registry())
    for fmt in ("table", "text"):
        out = get_format(fmt).render(report, RenderOptions(verbose=True, width=120))
        assert re.search(r"! warning: .*CRC", out), fmt


def test_json_has_the_reason_and_stays_schema_1():
    data = json.loads(run_cli("inspect", "--format", "json", DRIVE / "ConvNeXtPose_L_mirror.tar").stdout)
    assert data["schema_version"] == 1
    assert data["files"][0]["reason"] == "head widths 256,256,256 vs 512,512,512"


# --------------------------------------------------------------------------- choosing the format
class _Stdout:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, output, chosen", [(True, None, "table"), (False, None, "text"), (True, "r.txt", "text")])
def test_table_only_for_a_terminal(monkeypatch, tty, output, chosen):
    from convnextpose_audit.cli import render_out

    monkeypatch.setattr(render_out.sys, "stdout", _Stdout(tty))
    assert render_out.resolve_format("table", output) == chosen
    assert render_out.resolve_format("markdown", output) == "markdown"


def test_colour_on_a_terminal_unless_no_color(monkeypatch):
    from convnextpose_audit.cli import render_out

    monkeypatch.setattr(render_out.sys, "stdout", _Stdout(True))
    monkeypatch.setenv("COLUMNS", "123")
    monkeypatch.delenv("NO_COLOR", raising=False)
    options = render_out.render_options("table")
    assert options.color and options.width == 123
    monkeypatch.setenv("NO_COLOR", "1")
    assert not render_out.render_options("table").color


def test_output_file_gets_the_plain_lines(tmp_path):
    out = tmp_path / "report.txt"
    result = run_cli("inspect", "-o", out, *FILES)
    assert result.exit_code == 1 and result.stdout == ""
    lines = out.read_text().splitlines()
    assert [line.split()[0] for line in lines[:-1]] == [VERDICTS[p.name] for p in FILES]


@pytest.mark.parametrize("name", HUMAN)
def test_absurd_numbers_render(name):
    """Python refuses to print ints of more than 4,300 digits; a hostile shape must not crash a report.
    (JSON keeps numbers exact: bounding them is the reader's element cap, issue 11.)"""
    from convnextpose_audit.audit import AuditResult, Report, Verdict
    from convnextpose_audit.fingerprint import Fingerprint

    huge = 10 ** 5000
    fp = Fingerprint(state_dict_key="", prefix="", tensor_count=1, stem_width=huge, dims=(huge,), total=huge)
    r = AuditResult(path="x.pth", verdict=Verdict.UNKNOWN, fingerprint=fp, reason="r",
                    tensors=[{"name": "w", "dtype": "float32", "shape": [huge, 2]}])
    out = get_format(name).render(Report(files=[r]), RenderOptions(width=200))
    assert ">2^16609" in out
