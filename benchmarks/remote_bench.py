"""Remote audit benchmark: the L replica served over HTTP from 127.0.0.1, read with Range requests.

    python benchmarks/remote_bench.py            # L replica (~101 MB); writes its section of RESULTS.md
    python benchmarks/remote_bench.py --smoke    # XS, one repetition, to a scratch file (keeps the script alive)

Measures, against the same local Range-capable server (tests/http_server.py): what
``cnxp-audit inspect URL`` reads (bytes and requests, from its JSON and from the server's
own log) and its whole-process time; downloading the whole file; downloading it and then
inspecting the local copy; ``inspect URL`` when the server ignores Range (one streamed
download); and both again with the server throttled to 100 Mbit/s plus 20 ms per request. ``run.py`` calls :func:`remote_section` so a full run includes the same section.
Loopback is far faster than any real network, so the time ratios here understate the gain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the test suite's local HTTP server

from http_server import LocalServer  # noqa: E402

CLI = [str(Path(sys.executable).with_name("cnxp-audit"))]
HEADING = "## Remote audit over HTTP (local Range server)"
MiB = 1 << 20
LINK_RATE, LINK_DELAY = 12.5e6, 0.02  # 100 Mbit/s and 20 ms before each answer: an ordinary office link
LINK_NAME = "100 Mbit/s + 20 ms per request"

MAKE = """import sys, torch
from convnextpose_audit.model import build_model
from convnextpose_audit.variants import load_registry
torch.manual_seed(0)
model = torch.nn.DataParallel(build_model(load_registry().get(sys.argv[2])))
opt = torch.optim.AdamW(model.parameters())
for p in model.parameters():
    p.grad = torch.zeros_like(p)
opt.step()
torch.save({"epoch": 83, "network": model.state_dict(), "optimizer": opt.state_dict()}, sys.argv[1])
"""

DOWNLOAD = """import sys, requests
with requests.get(sys.argv[1], stream=True, headers={"Accept-Encoding": "identity"}) as r, open(sys.argv[2], "wb") as f:
    r.raise_for_status()
    for chunk in r.iter_content(1 << 20):
        f.write(chunk)
"""


def make_replica(folder: Path, label: str) -> Path:
    """``ConvNeXtPose_<label> (1).tar`` as the Drive holds it, written by torch in a child process."""
    path = folder / f"ConvNeXtPose_{label} (1).tar"
    if not path.exists():
        subprocess.run([sys.executable, "-c", MAKE, str(path), label], check=True)
    return path


def timed(cmd: list[str], repeat: int, ok=(0,)) -> tuple[float, str]:
    """Median whole-process seconds of ``cmd`` over ``repeat`` runs after a warm-up, and the last stdout."""
    times, out = [], ""
    for i in range(repeat + 1):
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode not in ok:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr[-300:]}")
        if i:
            times.append(time.perf_counter() - start)
        out = proc.stdout
    return statistics.median(times), out


def remote_section(path: Path, repeat: int, throttled: bool = True) -> tuple[list[str], list[tuple[str, str, str, bool]]]:
    """Markdown lines and ``(target, measured, goal, met)`` rows for the remote benchmark of ``path``.

    ``throttled`` adds the runs over a simulated 100 Mbit/s link (seconds per 100 MB; off in smoke runs).
    """
    size = path.stat().st_size
    with LocalServer({path.name: path}) as server, tempfile.TemporaryDirectory() as scratch:
        url = server.url(path.name)
        local_copy = str(Path(scratch) / path.name)
        inspect = [*CLI, "inspect", "--format", "json"]
        server.log.clear()
        t_remote, out = timed([*inspect, url], repeat)
        entry = json.loads(out)["files"][0]
        per_run = len(server.log) // (repeat + 1), server.bytes_sent // (repeat + 1)
        t_download, _ = timed([sys.executable, "-c", DOWNLOAD, url, local_copy], repeat)
        t_local, _ = timed([*inspect, local_copy], repeat)
        server.behaviour.ranges = False
        server.log.clear()
        t_fallback, out = timed([*inspect, url], repeat)
        fallback = json.loads(out)["files"][0]
        slow = _throttled(server, url, local_copy, repeat) if throttled else None
    lines = [HEADING, "",
             f"`{path.name}`, {size / 1e6:.1f} MB, served from 127.0.0.1 by `tests/http_server.py`; "
             f"medians of {repeat} whole-process runs after a warm-up. Reproduce: `python benchmarks/remote_bench.py`.",
             "", "| what | verdict | bytes read | requests | wall time |", "|---|---|---|---|---|",
             f"| `inspect URL` (Range) | {entry['verdict']} | {entry['bytes_read']:,} ({100 * entry['bytes_read'] / size:.2f}%) "
             f"| {entry['requests']} | {t_remote * 1000:.0f} ms |",
             f"| download the whole file (requests, streamed to disk) | - | {size:,} | 1 | {t_download * 1000:.0f} ms |",
             f"| download, then `inspect` the local copy | - | {size:,} | 1 | {(t_download + t_local) * 1000:.0f} ms |",
             f"| `inspect URL`, server without Range (one streamed download) | {fallback['verdict']} | "
             f"{fallback['bytes_read']:,} | {fallback['requests']} | {t_fallback * 1000:.0f} ms |",
             *([f"| `inspect URL`, link throttled to {LINK_NAME} | {entry['verdict']} | {entry['bytes_read']:,} | "
                f"{entry['requests']} | {slow[0] * 1000:.0f} ms |",
                f"| download the whole file over the same throttled link (1 run) | - | {size:,} | 1 | "
                f"{slow[1] * 1000:.0f} ms |"] if slow else []),
             "", f"The server's own log agrees: {per_run[0]} request(s) and {per_run[1]:,} body bytes per `inspect URL`. "
             "On loopback a whole download is cheap"
             + ("; on the throttled link the Range audit's advantage approaches the file size over the bytes it "
                "reads, less the round trips." if slow else ".")]
    targets = [
        (f"inspect URL ({entry['verdict']}): bytes read", f"{entry['bytes_read']:,}", "≤ 1 MiB",
         entry["bytes_read"] <= MiB and per_run[1] <= MiB),
        ("inspect URL: HTTP requests", str(entry["requests"]), "≤ 6", entry["requests"] <= 6 and per_run[0] <= 6),
        ("inspect URL vs download + inspect (same server, loopback)",
         f"{(t_download + t_local) / t_remote:.1f}× faster", "faster", t_remote < t_download + t_local),
    ]
    if slow:
        targets.append((f"inspect URL vs whole download at {LINK_NAME}", f"{slow[1] / slow[0]:.0f}× faster",
                        "≥ 10×", slow[1] >= 10 * slow[0]))
    return lines, targets


def _throttled(server: LocalServer, url: str, local_copy: str, repeat: int) -> tuple[float, float]:
    """Seconds for ``inspect URL`` (median) and for one whole download, over the throttled link."""
    server.behaviour.ranges, server.behaviour.rate, server.behaviour.delay = True, LINK_RATE, LINK_DELAY
    remote, _ = timed([*CLI, "inspect", "--format", "json", url], repeat)
    download, _ = timed([sys.executable, "-c", DOWNLOAD, url, local_copy], 1)
    return remote, download


def targets_table(targets) -> list[str]:
    """The targets as a markdown table."""
    return ["| target | measured | goal | met |", "|---|---|---|---|"] + \
        [f"| {name} | {value} | {goal} | {'met' if ok else 'NOT met'} |" for name, value, goal, ok in targets]


def splice(results: Path, section: list[str]) -> None:
    """Replace this benchmark's section of ``results`` (or append it), leaving the rest as it was."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    lines = text.rstrip("\n").split("\n")
    if HEADING in lines:
        start = lines.index(HEADING)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        lines[start:end] = section + ([""] if end < len(lines) else [])
    else:
        lines += [""] + section
    results.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="XS file, one repetition, scratch output")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=None, help="results file (default benchmarks/RESULTS.md)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.smoke else 5)
    folder = args.work / ("smoke" if args.smoke else "full")
    folder.mkdir(parents=True, exist_ok=True)
    path = make_replica(folder, "XS" if args.smoke else "L")
    lines, targets = remote_section(path, repeat, throttled=not args.smoke)
    section = lines + ["", "Targets:", ""] + targets_table(targets)
    out = args.out or (args.work / "RESULTS-remote-smoke.md" if args.smoke else HERE / "RESULTS.md")
    splice(out, section)
    print("\n".join(section))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
