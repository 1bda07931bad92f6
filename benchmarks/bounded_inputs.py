"""The bounded-inputs table of SECURITY.md: every class of issue 11, its verdict, exit code, peak RSS and time.

    python benchmarks/bounded_inputs.py            # runs tests/test_bounded_inputs.py, prints a markdown table

Runs the regression tests with ``CNXP_BOUNDS_LOG`` set (tests/fixtures/bounded.py logs
every command it measures in its child process) and reports, per test (one row per
parametrised case), the verdicts and exit codes seen and the worst peak RSS and wall
time over its commands. The ceilings the tests assert are 512 MiB and 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def collect() -> list[dict]:
    """Run the tests with logging on; return the logged measurements (the run's own failures are printed)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "bounds.jsonl"
        env = {**os.environ, "CNXP_BOUNDS_LOG": str(log),
               "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(ROOT / "tests" / "test_bounded_inputs.py")], env=env, cwd=ROOT,
                              capture_output=True, text=True)
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:], file=sys.stderr)
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def table(rows: list[dict]) -> str:
    """One markdown row per test and file: verdicts, exit codes, worst peak RSS and time, commands measured."""
    by_case: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_case[(r["test"].split("::", 1)[-1], r.get("file", ""))].append(r)
    files_per_test = defaultdict(set)
    for test, file in by_case:
        files_per_test[test].add(file)
    out = ["| case | verdict | exit | peak RSS (MiB) | time (s) | commands |", "|---|---|---|---:|---:|---:|"]
    for (test, file), runs in by_case.items():
        name = test.removeprefix("test_") + (f" `{file}`" if len(files_per_test[test]) > 1 else "")
        verdicts = sorted({v for r in runs for v in r["verdicts"]}) or ["-"]
        codes = sorted({r["code"] for r in runs})
        out.append(f"| {name} | {', '.join(verdicts)} | {', '.join(map(str, codes))} | "
                   f"{max(r['peak_mib'] for r in runs):.0f} | {max(r['seconds'] for r in runs):.2f} | {len(runs)} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(collect()))
