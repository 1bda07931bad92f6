"""Long-running fuzzer for the reader: atheris (coverage-guided) where it installs, else hypothesis.

    pip install atheris            # optional
    python fuzz/fuzz_reader.py -max_total_time=300      # atheris: libFuzzer flags
    python fuzz/fuzz_reader.py --hypothesis 200000      # fallback: that many examples

The property is the one tests/test_fuzz.py checks with a small budget: any byte
string, read as a checkpoint of any format, gives a result or one of the
project's typed errors -- never another exception, a hang or a crash. Seeds are
the valid files from tests/test_fuzz.py (one per container format).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_fuzz import SEEDS, exercise  # noqa: E402

_TMP = Path(tempfile.mkdtemp(prefix="cnxp-fuzz-"))
_FILE = _TMP / "input.bin"


def one_input(data: bytes) -> None:
    """Write ``data`` to a scratch file and exercise every reader path on it."""
    _FILE.write_bytes(data)
    exercise(_FILE)


def run_atheris(argv: list[str]) -> None:
    import atheris

    corpus = _TMP / "seeds"
    corpus.mkdir(exist_ok=True)
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    atheris.instrument_all()  # coverage feedback from the (already imported) reader code
    atheris.Setup([argv[0], str(corpus), *argv[1:]], one_input)
    atheris.Fuzz()


def run_hypothesis(examples: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    count = 0

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(seed=st.sampled_from(sorted(SEEDS)), flips=st.lists(st.tuples(st.integers(0, 1 << 20),
                                                                          st.integers(0, 255)), max_size=16),
           cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
    def prop(seed, flips, cut):
        nonlocal count
        data = bytearray(SEEDS[seed])
        for pos, value in flips:
            data[pos % len(data)] = value
        if cut is not None:
            data = data[: cut % (len(data) + 1)]
        one_input(bytes(data))
        count += 1

    prop()
    print(f"hypothesis: {count} inputs, no failures")


if __name__ == "__main__":
    if "--hypothesis" in sys.argv:
        run_hypothesis(int(sys.argv[sys.argv.index("--hypothesis") + 1]))
    else:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris not installed; falling back to hypothesis", file=sys.stderr)
            run_hypothesis(int(os.environ.get("FUZZ_EXAMPLES", "100000")))
        else:
            run_atheris(sys.argv)
