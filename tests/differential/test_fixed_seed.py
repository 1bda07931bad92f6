"""The differential test: a fixed-seed run of mutants through torch.load and through cnxp-audit.

Expected values come from torch (a sandboxed worker), never from our reader. The
first tests check that the harness itself can see what it must see, so that a
blind oracle cannot make the main test pass.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from differential import pickles
from differential.generate import class_names, generate, make
from differential.mutants_poly import safetensors_pickle
from differential.run import run

pytestmark = pytest.mark.differential

SEED = 20261124
PER_CLASS = 6  # 50 classes -> 300 mutants, 600 files, about 750 torch loads


@pytest.mark.parametrize("callee", sorted(pickles._CALLEES))
@pytest.mark.parametrize("spelling", pickles.SPELLINGS)
def test_payload_fragments_create_the_sentinel_in_cpython(tmp_path, callee, spelling):
    """Each hand-built payload really runs under CPython's pickle (in a child, in an empty folder)."""
    blob = pickles.splice(b"\x80\x02K\x07.", pickles.payload(callee, spelling))
    code = "import pickle, sys; assert pickle.loads(sys.stdin.buffer.read()) == 7"
    subprocess.run([sys.executable, "-c", code], input=blob, cwd=tmp_path, check=True, timeout=30)
    assert (tmp_path / pickles.SENTINEL).exists()


def test_safetensors_pickle_polyglot_is_both():
    """The polyglot class's file is valid safetensors and, from byte 0, a pickle that reaches its tensor data."""
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tail = b"K\x07."
    data = safetensors_pickle(tail)
    tensors = safetensors_numpy.load(data)
    assert len(tensors) == 1 and bytes(next(iter(tensors.values()))) == tail
    assert pickle.loads(data) == 7  # our own benign bytes


def test_the_oracle_sees_payloads_and_tensors(oracle, seeds, tmp_path):
    """Baselines: torch runs each baseline payload, and reads the 9 tensors of each clean seed."""
    for cls, family_tensors in (("zip_identity", 9), ("legacy_identity", 9), ("tar_identity", 2)):
        pair = make(seeds, SEED, 0, cls)
        hostile, clean = tmp_path / f"{cls}-h.bin", tmp_path / f"{cls}-c.bin"
        hostile.write_bytes(pair.hostile)
        clean.write_bytes(pair.clean)
        assert oracle.load(hostile, "A")["sentinel"], cls
        got = oracle.load(clean, "B")
        if not got["ok"]:
            got = oracle.load(clean, "C")
        assert got["ok"] and len(got["tensors"]) == family_tensors, (cls, got.get("error"))


def test_generation_is_deterministic(seeds):
    """The same seed and index give the same bytes, so every recipe in a report can be rebuilt."""
    first = [(p.cls, p.clean, p.hostile) for p in generate(seeds, SEED, 60)]
    again = [(p.cls, p.clean, p.hostile) for p in generate(seeds, SEED, 60)]
    assert first == again
    assert all(c != h for _cls, c, h in first if _cls != "safetensors_identity")


@pytest.mark.parametrize("cls", class_names())
def test_mutant_class(cls, oracle, seeds, tmp_path):
    """PER_CLASS mutants of one class: a payload torch runs is UNSAFE for us; tensors torch reads (weights_only=True,
    else weights_only=False) we read bit-identical or refuse; TorchScript dispatch is UNSAFE; never a traceback."""
    summary = run(generate(seeds, SEED, PER_CLASS, only=[cls]), oracle, tmp_path)
    print(summary.report(limit=PER_CLASS * 2))
    assert not summary.oracle_errors
    assert summary.mutants == PER_CLASS
    assert not os.path.lexists(tmp_path / pickles.SENTINEL)
    assert not summary.failures, summary.report(limit=4)
