"""Long differential run against torch.load: ``python -m fuzz.differential --seconds 600``.

Generates container mutants from consecutive seeds (see ``tests/differential/``),
loads each in torch (a sandboxed worker) and in cnxp-audit, and prints the
mutants, classes covered, and every disagreement with the recipe that rebuilds
it. Exit status 1 if any failure was found. ``--save DIR`` keeps failing files;
``--seed S --index I --show`` replays one mutant mode by mode.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
try:  # the installed (or PYTHONPATH) convnextpose_audit wins; the checkout's src/ is the fallback
    import convnextpose_audit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "src"))

from differential.generate import MutantPair, class_names, generate  # noqa: E402
from differential.oracle import Oracle  # noqa: E402
from differential.run import Summary, brief, check, explain  # noqa: E402
from differential.seeds import assemble  # noqa: E402


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="stop after this long (default 60)")
    ap.add_argument("--seed", type=int, default=0, help="first seed (default 0); each seed gives --per-seed mutants")
    ap.add_argument("--per-seed", type=int, default=None, help="mutants per seed (default: 4 per class)")
    ap.add_argument("--count", type=int, default=None, help="stop after this many mutants")
    ap.add_argument("--only", action="append", help="only this class (repeatable)")
    ap.add_argument("--index", type=int, default=None, help="with --seed: just this mutant index")
    ap.add_argument("--show", action="store_true", help="with --index: what torch and we did, mode by mode")
    ap.add_argument("--brief", action="store_true", help="two lines per mutant instead of judging")
    ap.add_argument("--save", type=Path, help="write the files of every failing mutant here")
    ap.add_argument("--limit", type=int, default=60, help="failures to print in full (default 60)")
    return ap.parse_args(argv)


def _merge(total: Summary, part: Summary) -> None:
    total.mutants += part.mutants
    total.classes.update(part.classes)
    total.payload_ran.update(part.payload_ran)
    total.torch_read.update(part.torch_read)
    total.failures += part.failures
    for reason, classes in part.over_strict.items():
        total.over_strict[reason].update(classes)
    total.lenient.update(part.lenient)
    total.agree += part.agree
    total.oracle_errors += part.oracle_errors


def _save(folder: Path, pair: MutantPair) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"s{pair.seed}-{pair.index:05d}-{pair.cls}"
    (folder / f"{stem}-clean{pair.suffix}").write_bytes(pair.clean)
    (folder / f"{stem}-hostile{pair.suffix}").write_bytes(pair.hostile)


def _one(args, pair: MutantPair, oracle: Oracle, tmp: Path, part: Summary) -> None:
    if args.brief:
        print(brief(pair, oracle, tmp), flush=True)
        part.mutants += 1
        return
    before = len(part.failures)
    check(pair, oracle, tmp, part)
    if args.save and len(part.failures) > before:
        _save(args.save, pair)


def _loop(args, names: list[str], oracle: Oracle, tmp: Path) -> Summary:
    seeds = assemble(oracle.seed_parts())
    total, start = Summary(), time.monotonic()
    deadline, seed = start + args.seconds, args.seed
    per_seed = 1 if args.index is not None else args.per_seed or 4 * len(names)
    while time.monotonic() < deadline and (args.count is None or total.mutants < args.count):
        part = Summary()
        for pair in generate(seeds, seed, per_seed, args.only, start=args.index or 0):
            if args.show:
                print(explain(pair, oracle, tmp))
                return total
            if time.monotonic() > deadline or (args.count is not None and total.mutants + part.mutants >= args.count):
                break
            _one(args, pair, oracle, tmp, part)
        _merge(total, part)
        print(f"seed {seed}: {part.mutants} mutants, {len(part.failures)} failures "
              f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
        if args.index is not None:
            break
        seed += 1
    total.seconds = time.monotonic() - start
    total.oracle_restarts = oracle.restarts
    return total


def main(argv: list[str] | None = None) -> int:
    """Run, print the report, exit 1 on any failure."""
    args = _args(argv)
    names = class_names(args.only)
    with Oracle() as oracle, tempfile.TemporaryDirectory(prefix="cnxp-diff-") as tmp:
        print(f"torch {oracle.version()['torch']}; {len(names)} classes", file=sys.stderr)
        os.chdir(tmp)  # our tool runs here: a payload it ran would leave the sentinel here
        try:
            total = _loop(args, names, oracle, Path(tmp))
        finally:
            os.chdir(ROOT)
    if args.show or args.brief:
        return 0
    print(f"classes covered: {len(total.classes)}/{len(names)}")
    print(total.report(limit=args.limit))
    return 1 if total.failures else 0


if __name__ == "__main__":
    sys.exit(main())
