"""Benchmarks: cnxp-audit against torch.load, side by side, in one run.

    python benchmarks/run.py              # full run (~10 min, ~3 GB of scratch files), writes RESULTS.md
    python benchmarks/run.py --smoke      # tiny sizes, one repetition, no targets: keeps the script alive in CI

Every figure is the median of --repeat runs (default 5) after one warm-up, with a
warm page cache. Whole-process wall time and peak RSS come from os.wait4 on each
child. Comparisons are ratios measured in the same run; absolute seconds are for
information only, since these machines are shared and noisy. Needs torch.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLI = [str(Path(sys.executable).with_name("cnxp-audit"))]  # the console script users run

TORCH_LOAD = """import sys, torch
obj = torch.load(sys.argv[1], map_location="cpu", weights_only=True, mmap=sys.argv[2] == "mmap")
def walk(o, out):
    if isinstance(o, torch.Tensor):
        out.append((str(o.dtype), tuple(o.shape)))
    elif isinstance(o, dict):
        for v in o.values():
            walk(v, out)
    elif isinstance(o, (list, tuple)):
        for v in o:
            walk(v, out)
    return out
print(len(walk(obj, [])))
"""

FLOOR = """import io, pickle, sys, zipfile
class Stub(dict):
    def __init__(self, *a, **k): pass
    def __call__(self, *a, **k): return Stub()
    def __setstate__(self, state): pass
class Loader(pickle.Unpickler):
    def find_class(self, module, name): return Stub
    def persistent_load(self, pid): return None
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("/data.pkl"))
Loader(io.BytesIO(z.read(name))).load()
"""


@dataclass
class Measure:
    seconds: float
    rss_mib: float


def run_once(cmd: list[str]) -> Measure:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-500:]}")
    return Measure(seconds, usage.ru_maxrss / 1024)


def measure(cmd: list[str], repeat: int) -> Measure:
    run_once(cmd)  # warm-up: page cache, .pyc files
    runs = [run_once(cmd) for _ in range(repeat)]
    return Measure(statistics.median(r.seconds for r in runs), statistics.median(r.rss_mib for r in runs))


# ----------------------------------------------------------------------------- inputs
def make_inputs(work: Path, smoke: bool) -> dict:
    import torch

    from convnextpose_audit.model import build_model
    from convnextpose_audit.variants import load_registry

    work.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    out: dict = {"variants": {}, "size": {}, "count": {}, "scan": str(work / "scan"), "torch": torch.__version__}
    labels = ["XS"] if smoke else ["XS", "S", "M", "L"]
    registry = load_registry()
    for label in labels:
        for fmt in ("zip", "legacy"):
            path = work / f"ConvNeXtPose_{label}_{fmt}.tar"
            if not path.exists():
                model = torch.nn.DataParallel(build_model(registry.get(label)))
                opt = torch.optim.AdamW(model.parameters())
                for p in model.parameters():
                    p.grad = torch.zeros_like(p)
                opt.step()
                torch.save({"epoch": 83, "network": model.state_dict(), "optimizer": opt.state_dict()}, path,
                           _use_new_zipfile_serialization=fmt == "zip")
            out["variants"][f"{label} ({fmt})"] = str(path)
    sizes = [1 << 20, 2 << 20] if smoke else [10 << 20, 100 << 20, 1 << 30]
    for size in sizes:
        path = work / f"size_{size >> 20}MiB.pth"
        if not path.exists():
            n = 100
            sd = collections.OrderedDict((f"layer{i}.weight", torch.zeros(size // n // 4)) for i in range(n))
            torch.save({"network": sd}, path)
        out["size"][str(size)] = str(path)
    counts = [10, 100] if smoke else [100, 1_000, 10_000, 100_000]
    total = (1 << 20) if smoke else (10 << 20)
    for count in counts:
        path = work / f"count_{count}.pth"
        if not path.exists():
            sd = collections.OrderedDict((f"t{i}", torch.zeros(max(1, total // count // 4))) for i in range(count))
            torch.save({"network": sd}, path)
        out["count"][str(count)] = str(path)
    n_scan = 20 if smoke else 1000
    folder = work / "scan"
    if not folder.exists() or len(list(folder.iterdir())) != n_scan:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for i in range(n_scan):
            torch.save({"network": {"w": torch.zeros(16), "b": torch.zeros(4)}}, folder / f"ckpt_{i:04d}.pth")
    return out


# ----------------------------------------------------------------------------- report
def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny inputs, one repetition, no targets")
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--work", type=Path, default=HERE / "work")
    ap.add_argument("--out", type=Path, default=None, help="markdown output (default benchmarks/RESULTS.md)")
    ap.add_argument("--make-inputs", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.make_inputs:  # child mode: torch is imported here, never in the measuring parent
        print(json.dumps(make_inputs(args.make_inputs, args.smoke)))
        return 0
    repeat = args.repeat or (1 if args.smoke else 5)
    out_path = args.out or (args.work / "RESULTS-smoke.md" if args.smoke else HERE / "RESULTS.md")
    work = args.work / ("smoke" if args.smoke else "full")
    scripts = work / "scripts"
    scripts.mkdir(parents=True, exist_ok=True)
    (scripts / "torch_load.py").write_text(TORCH_LOAD)
    (scripts / "floor.py").write_text(FLOOR)

    t0 = time.perf_counter()
    # Generate inputs in a child so this process never holds torch: a child's peak RSS as the
    # kernel reports it includes the memory of the parent it was forked from.
    made = subprocess.run([sys.executable, __file__, "--make-inputs", str(work), *(["--smoke"] if args.smoke else [])],
                          check=True, capture_output=True, text=True)
    raw = json.loads(made.stdout)
    inputs = {"variants": {k: Path(v) for k, v in raw["variants"].items()},
              "size": {int(k): Path(v) for k, v in raw["size"].items()},
              "count": {int(k): Path(v) for k, v in raw["count"].items()}, "scan": Path(raw["scan"])}
    # Measure an installed tool: bytecode compiled, as pip does at install time.
    import convnextpose_audit

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(Path(convnextpose_audit.__file__).parent)], check=True)
    print(f"inputs ready in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    def inspect(path, *extra):
        return measure([*CLI, "inspect", "--format", "json", *extra, str(path)], repeat)

    def torch_load(path, mmap=False):
        return measure([sys.executable, str(scripts / "torch_load.py"), str(path), "mmap" if mmap else "-"], repeat)

    lines: list[str] = []
    targets: list[tuple[str, str, str, bool]] = []

    # 1. the four variants: cnxp-audit vs torch.load vs floor
    lines += ["## Inspect vs torch.load (whole process)", "",
              "| file | size | cnxp-audit | torch.load | torch.load mmap | floor (zip + stub unpickler) | "
              "speed-up vs torch.load | vs floor | peak RSS cnxp-audit / torch.load |",
              "|---|---|---|---|---|---|---|---|---|"]
    headline = None
    for name, path in inputs["variants"].items():
        label, fmt = name.split(" (")[0], name.split("(")[1].rstrip(")")
        ours = inspect(path)
        tl = torch_load(path)
        tm = torch_load(path, mmap=True) if fmt == "zip" else None
        floor = measure([sys.executable, str(scripts / "floor.py"), str(path)], repeat) if fmt == "zip" else None
        size = path.stat().st_size / 1e6
        lines.append(f"| {label} ({fmt}) | {size:.0f} MB | {ours.seconds * 1000:.0f} ms | {tl.seconds * 1000:.0f} ms | "
                     f"{f'{tm.seconds * 1000:.0f} ms' if tm else '-'} | "
                     f"{f'{floor.seconds * 1000:.0f} ms' if floor else '-'} | {ratio(tl.seconds, ours.seconds):.1f}× | "
                     f"{f'{ratio(ours.seconds, floor.seconds):.2f}×' if floor else '-'} | "
                     f"{ours.rss_mib:.0f} / {tl.rss_mib:.0f} MiB |")
        if fmt == "zip" and (label == "L" or args.smoke):
            headline = (label, ours, tl, tm, floor)
    if headline:
        label, ours, tl, tm, floor = headline
        targets.append((f"inspect {label}: ≥ 10× faster than torch.load", f"{ratio(tl.seconds, ours.seconds):.1f}×",
                        "≥ 10×", ratio(tl.seconds, ours.seconds) >= 10))
        targets.append((f"inspect {label}: within 3× of the floor", f"{ratio(ours.seconds, floor.seconds):.2f}×",
                        "≤ 3×", ratio(ours.seconds, floor.seconds) <= 3))
        targets.append((f"inspect {label}: peak RSS ≤ 64 MiB", f"{ours.rss_mib:.0f} MiB (torch.load {tl.rss_mib:.0f})",
                        "≤ 64 MiB", ours.rss_mib <= 64))

    # 2. file size at a fixed tensor count
    lines += ["", "## Time against file size (100 tensors)", "", "| file size | cnxp-audit | ratio to smallest |",
              "|---|---|---|"]
    size_times = {size: inspect(path) for size, path in inputs["size"].items()}
    smallest = min(size_times)
    for size, m in size_times.items():
        lines.append(f"| {size >> 20} MiB | {m.seconds * 1000:.0f} ms | {ratio(m.seconds, size_times[smallest].seconds):.2f}× |")
    largest = max(size_times)
    r = ratio(size_times[largest].seconds, size_times[smallest].seconds)
    targets.append((f"{largest >> 20} MiB vs {smallest >> 20} MiB at the same tensor count", f"{r:.2f}×", "≤ 1.2×",
                    r <= 1.2))

    # 3. tensor count at a fixed size
    lines += ["", "## Time against tensor count (fixed total size)", "",
              "| tensors | cnxp-audit | floor | marginal µs per tensor |", "|---|---|---|---|"]
    count_times = {n: inspect(p) for n, p in inputs["count"].items()}
    counts = sorted(count_times)
    prev = None
    marginals = []
    for n in counts:
        m = count_times[n]
        fl = measure([sys.executable, str(scripts / "floor.py"), str(inputs["count"][n])], repeat)
        marginal = "-"
        if prev is not None:
            per = (m.seconds - count_times[prev].seconds) / (n - prev) * 1e6
            marginals.append(per)
            marginal = f"{per:.1f}"
        lines.append(f"| {n:,} | {m.seconds * 1000:.0f} ms | {fl.seconds * 1000:.0f} ms | {marginal} |")
        prev = n
    if len(marginals) >= 2:
        spread = max(marginals[1:]) / max(min(marginals[1:]), 1e-9) if len(marginals) > 2 else \
            marginals[-1] / max(marginals[0], 1e-9)
        targets.append(("linear in tensor count (largest / smallest marginal cost per tensor)", f"{spread:.2f}×",
                        "≤ 2×", spread <= 2))

    # 4. scan throughput
    folder = inputs["scan"]
    n_files = len(list(folder.iterdir()))
    lines += ["", f"## scan over {n_files:,} small checkpoints", "", "| jobs | wall time | files/s |", "|---|---|---|"]
    scan_times = {}
    for jobs in (1, 2):
        m = measure([*CLI, "scan", "--format", "json", "-j", str(jobs), str(folder)], max(1, repeat // 2))
        scan_times[jobs] = m.seconds
        lines.append(f"| {jobs} | {m.seconds:.2f} s | {n_files / m.seconds:.0f} |")
    targets.append((f"scan of {n_files:,} checkpoints with -j 2", f"{scan_times[2]:.2f} s", "≤ 10 s",
                    scan_times[2] <= 10))

    # 5. hashing throughput against sha256sum on the same (largest) file
    big = inputs["size"][largest]
    mb = big.stat().st_size / 1e6
    ours_hash = inspect(big, "--hash")
    ours_plain = size_times[largest]
    sha = measure(["sha256sum", str(big)], repeat) if shutil.which("sha256sum") else None
    lines += ["", f"## --hash throughput on {mb:.0f} MB", "", "| tool | wall time | MB/s |", "|---|---|---|",
              f"| cnxp-audit inspect --hash | {ours_hash.seconds:.2f} s | {mb / ours_hash.seconds:.0f} |",
              f"| cnxp-audit inspect (no hash) | {ours_plain.seconds:.2f} s | - |"]
    if sha:
        lines.append(f"| sha256sum | {sha.seconds:.2f} s | {mb / sha.seconds:.0f} |")
        r = ratio(sha.seconds, ours_hash.seconds)
        targets.append(("--hash throughput vs sha256sum", f"{r * 100:.0f}%", "≥ 80%", r >= 0.8))

    # 6. the L file over HTTP from a local Range server (benchmarks/remote_bench.py)
    from remote_bench import remote_section

    remote_file = inputs["variants"].get("L (zip)") or inputs["variants"]["XS (zip)"]
    remote_lines, remote_targets = remote_section(remote_file, repeat, throttled=not args.smoke)
    lines += [""] + remote_lines
    targets += remote_targets

    header = [f"# Benchmark results{' (smoke: tiny inputs, targets not meaningful)' if args.smoke else ''}", "",
              f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC} on {platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {raw['torch']}; "
              f"median of {repeat} run(s) after a warm-up, warm page cache. Reproduce: `python benchmarks/run.py`.",
              "", "## Targets", "", "| target | measured | goal | met |", "|---|---|---|---|"]
    header += [f"| {name} | {value} | {goal} | {'met' if ok else 'NOT met'} |" for name, value, goal, ok in targets]
    text = "\n".join(header + [""] + lines) + "\n"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    print(text)
    print(f"total {time.perf_counter() - t0:.0f} s; wrote {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
