"""Property-based fuzzing of every reader path: a result or a typed error, nothing else.

Bounded for CI; ``fuzz/`` runs the same properties with a large budget.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convnextpose_audit.errors import AuditError
from convnextpose_audit.reader import iter_checkpoints
from fixtures import hostile, legacy_tar

pytestmark = pytest.mark.security  # builds hostile inputs by hand: never skipped

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "drive"


def seeds() -> dict[str, bytes]:
    """One small valid file per format."""
    clean = hostile.torch_zip(hostile.clean_data_pkl(), {"0": bytes(range(16))})
    return {
        "zip": clean,
        "zip-real": (EXAMPLES / "posenet_resnet50.pth").read_bytes(),
        "legacy": hostile.legacy(hostile.stop(b"}")),
        "tar": legacy_tar.build(legacy_tar.SAMPLE),
        "outer": hostile.outer({"a/m.pth": clean}, zipfile.ZIP_DEFLATED),
        "safetensors": b'\x28\x00\x00\x00\x00\x00\x00\x00{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
                       + b"\x00" * 8,
    }


SEEDS = seeds()


def exercise(path: Path) -> None:
    """Everything a user can ask of a file: open, walk, fingerprint, materialise every tensor."""
    from convnextpose_audit.fingerprint import fingerprint

    try:
        for ckpt in iter_checkpoints(path):
            with ckpt:
                fingerprint(ckpt.obj)
                for _, t in ckpt.tensors():
                    t.numpy()
    except AuditError:
        pass  # a typed, one-line error is an allowed outcome


mutations = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=mutations, cut=st.one_of(st.none(), st.integers(0, 1 << 20)))
def test_flips_and_truncations(tmp_path, fmt, flips, cut):
    data = bytearray(SEEDS[fmt])
    for pos, value in flips:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(data))
    exercise(path)


ZIP_FIELDS = [(8, "<H"), (10, "<H"), (16, "<L"), (20, "<L"), (24, "<L"), (28, "<H"), (30, "<H"), (42, "<L")]


@pytest.mark.parametrize("fmt", ["zip", "outer"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, 50), st.sampled_from(ZIP_FIELDS), st.integers(0, 2**32 - 1)),
                      min_size=1, max_size=4))
def test_zip_header_edits(tmp_path, fmt, edits):
    import struct

    data = bytearray(SEEDS[fmt])
    entries = list(hostile._central(bytes(data)))
    for index, (offset, fmt_code), value in edits:
        at, _ = entries[index % len(entries)]
        struct.pack_into(fmt_code, data, at + offset, value % (1 << (8 * struct.calcsize(fmt_code))))
    path = tmp_path / "z.bin"
    path.write_bytes(bytes(data))
    exercise(path)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300))
def test_random_pickles(body):
    from convnextpose_audit.reader.limits import Limits
    from convnextpose_audit.reader.meter import Meter
    from convnextpose_audit.reader.pickle import read_pickle, scan_pickle

    limits = Limits()
    result = read_pickle(b"\x80\x02" + body, member="fuzz", limits=limits, meter=Meter(limits, "fuzz"),
                         persistent_load=lambda pid: pid)
    assert result.error is None or isinstance(result.error, AuditError)
    scan = scan_pickle(b"\x80\x02" + body, member="fuzz", limits=limits, persistent=True)
    # The scan stops exactly where the structured read would, or later (it never hashes or validates values).
    if result.end is not None:
        assert scan.end == result.end
    assert {g.qualname for g in result.globals} <= {g.qualname for g in scan.globals}
