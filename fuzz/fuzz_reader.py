"""Long-running fuzzer for the whole pipeline: atheris (coverage-guided) where it installs, else hypothesis.

    pip install atheris            # optional (the [fuzz] extra)
    python fuzz/fuzz_reader.py -max_total_time=600 -timeout=10 -rss_limit_mb=512   # atheris: libFuzzer flags
    python fuzz/fuzz_reader.py --hypothesis 20000                                  # fallback: that many examples

The property (fuzz/pipeline.py): any byte string, read as a checkpoint of any format,
walked, fingerprinted, hashed, audited, compared and rendered in every format, and
given to the command line, ends in a result, a typed error or a documented exit
code; never another exception, a traceback, a hang past 10 s or more than 512 MiB of
resident memory. A watchdog thread enforces the memory cap (``--rss-mb``) and an
alarm the time limit (``--seconds``) per input; the input being run is kept in
``current.bin`` of the scratch folder, so a crash or a kill leaves its reproducer.
``--no-cli`` skips the command-line half (faster; the in-process pipeline only).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="cnxp-fuzz-"))
STATS = {"inputs": 0, "peak_mib": 0.0, "started": time.monotonic()}


def rss_mib(field: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def start_watchdog(cap_mib: float) -> None:
    """Kill the process, naming the input, as soon as its resident memory passes ``cap_mib``."""
    def watch() -> None:
        while True:
            now = rss_mib()
            STATS["peak_mib"] = max(STATS["peak_mib"], now)
            if now > cap_mib:
                sys.stderr.write(f"\nFINDING: resident memory {now:.0f} MiB > {cap_mib:.0f} MiB on the input in "
                                 f"{SCRATCH / 'current.bin'}\n")
                sys.stderr.flush()
                os._exit(3)
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()


def one_input(data: bytes, seconds: int, with_cli: bool) -> None:
    """Keep the input for reproduction, run the property under an alarm."""
    (SCRATCH / "current.bin").write_bytes(data)
    STATS["inputs"] += 1
    signal.alarm(seconds)
    try:
        pipeline.run_one(data, SCRATCH, with_cli)
    finally:
        signal.alarm(0)


def _expire(*_):
    raise pipeline.Finding("the input took longer than the time limit")


def run_atheris(argv: list[str], seconds: int, with_cli: bool) -> None:
    import atheris

    corpus = SCRATCH / "seeds"
    corpus.mkdir(exist_ok=True)
    for n, (name, data) in enumerate(pipeline.seeds().items()):
        (corpus / f"seed{n:03d}").write_bytes(data)
    atheris.instrument_all()  # coverage feedback from the (already imported) project code
    atheris.Setup([argv[0], str(corpus), *argv[1:]], lambda data: one_input(data, seconds, with_cli))
    atheris.Fuzz()


def run_hypothesis(examples: int, seconds: int, with_cli: bool, derandomize: bool = False) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    all_seeds = pipeline.seeds()
    positions = st.integers(0, 1 << 20)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(seed=st.sampled_from(sorted(all_seeds)), flips=st.lists(st.tuples(positions, st.integers(0, 255)),
                                                                   max_size=8),
           cut=st.one_of(st.none(), positions), splice=st.one_of(st.none(), st.tuples(positions, positions, positions)))
    def prop(seed, flips, cut, splice):
        one_input(pipeline.mutate(all_seeds[seed], flips, cut, splice), seconds, with_cli)

    prop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--hypothesis", type=int, metavar="N", help="run N hypothesis examples instead of atheris")
    parser.add_argument("--derandomize", action="store_true", help="hypothesis: a fixed sequence of examples (CI)")
    parser.add_argument("--rss-mb", type=float, default=512, help="memory cap for the process (default 512)")
    parser.add_argument("--seconds", type=int, default=10, help="time limit per input (default 10)")
    parser.add_argument("--no-cli", action="store_true", help="skip the command-line half of the property")
    args, rest = parser.parse_known_args(argv[1:])
    signal.signal(signal.SIGALRM, _expire)
    start_watchdog(args.rss_mb)
    try:
        if args.hypothesis is None:
            try:
                import atheris  # noqa: F401
            except ImportError:
                print("atheris not installed; falling back to hypothesis", file=sys.stderr)
                args.hypothesis = int(os.environ.get("FUZZ_EXAMPLES", "100000"))
        if args.hypothesis is None:
            run_atheris([argv[0], *rest], args.seconds, not args.no_cli)
        else:
            run_hypothesis(args.hypothesis, args.seconds, not args.no_cli, args.derandomize)
    finally:
        took = time.monotonic() - STATS["started"]
        print(f"fuzz: {STATS['inputs']} inputs in {took:.0f} s, peak RSS {max(STATS['peak_mib'], rss_mib('VmHWM')):.0f} "
              f"MiB; last input in {SCRATCH / 'current.bin'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
