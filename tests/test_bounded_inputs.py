"""Bounded on every input (issue 11): one test per class of hostile file, each with its bound asserted.

Every file is built by hand (``fixtures/bounded.py``: opcodes, raw zip and tar records;
no torch). Each test runs ``inspect`` and ``scan`` in a fresh child process and asserts
the verdict, the exit code and the reason, and that no command took more than 10 s or
512 MiB of peak RSS (VmHWM of the child, reset between commands) or printed a traceback.
Where a bound is about growth (many trees, records, members), two sizes are measured
and the ratio of their times shows the growth is linear. Sizes are the smallest that
show the bound, so the whole module runs in well under a minute.
"""

from __future__ import annotations

import os
import struct

import pytest

from fixtures.bounded import (ESC, EVIL, MiB, Measured, audit_both, colliding_ints, deep_tuple, deflated_zip_of_zeros,
                              measure, outer_with_trees, safetensors, state_dict, tar_checkpoint, tensor, tuple_dag,
                              write, zip_of)
from fixtures.hostile import raw_zip, torch_zip
from fixtures.pickle_ops import glob, i, s, stop, tup

pytestmark = pytest.mark.security

RSS_MIB = 512  #: the ceiling of issue 11, for every command on every input
SECONDS = 10.0
EXIT = {"UNKNOWN": 0, "UNREADABLE": 3, "UNSAFE": 4}


def bounded(*runs: Measured) -> None:
    """No command exceeded the ceilings, printed a traceback or died of a bug."""
    for r in runs:
        assert r.peak_mib < RSS_MIB, f"{r.args[0]}: peak RSS {r.peak_mib:.0f} MiB"
        assert r.seconds < SECONDS, f"{r.args[0]}: {r.seconds:.1f} s"
        assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr[-500:]
        assert r.code != 70


def judged(runs: tuple[Measured, ...], verdict: str, needle: str = "") -> None:
    """Every file of every report has ``verdict``, the exit code says so, and some reason holds ``needle``."""
    bounded(*runs)
    for r in runs:
        files = r.json()["files"]
        assert {f["verdict"] for f in files} == {verdict}, [f.get("error") for f in files]
        assert r.code == EXIT[verdict], (r.args[0], r.code)
        reasons = " ".join(f.get("error") or "" for f in files)
        assert needle in reasons, reasons[:500]


def zipped(tmp_path, name: str, pickle: bytes, storages: dict[str, bytes] | None = None):
    """A torch zip holding ``pickle`` as data.pkl (and ``storages``), written to ``tmp_path/name``."""
    return write(tmp_path, name, torch_zip(pickle, storages))


# -- hashing ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["frozenset stand-in", "FROZENSET", "set ADDITEMS", "dict key"])
def test_deep_tuple_reaching_hash(tmp_path, route):
    """The issue's file is 500,000 deep through the frozenset stand-in (hash() recursed past the C stack: SIGSEGV);
    the other routes to hash() are as deep as it takes to overflow that stack (about 100,000)."""
    depth = 500_000 if route == "frozenset stand-in" else 150_000
    body = {"frozenset stand-in": glob("builtins", "frozenset") + b"(]" + deep_tuple(depth) + b"atR",
            "FROZENSET": b"(" + deep_tuple(depth) + b"\x91",
            "set ADDITEMS": b"\x8f(" + deep_tuple(depth) + b"\x90",
            "dict key": b"}" + deep_tuple(depth) + b"Ns"}[route]
    judged(audit_both(zipped(tmp_path, "deep.pth", stop(body))), "UNREADABLE", "nested deeper than max_nesting=200")


DAG = tuple_dag(60)  # 183 bytes; expanded, 2**61 nodes


@pytest.mark.parametrize("route", ["dict key", "set member", "frozenset stand-in", "OrderedDict key"])
def test_shared_tuple_dag_as_key(tmp_path, route):
    top = b"h\x3c"
    body = {"dict key": b"}" + top + b"Ns",
            "set member": b"\x8f(" + top + b"\x90",
            "frozenset stand-in": glob("builtins", "frozenset") + b"(]" + top + b"atR",
            "OrderedDict key": glob("collections", "OrderedDict") + b"(]" + tup(top, b"N") + b"atR"}[route]
    judged(audit_both(zipped(tmp_path, "dag.pth", stop(DAG + b"0" + body))), "UNREADABLE", "max_hash_work")


def test_shared_tuple_dag_as_a_value_is_walked_once(tmp_path):
    """Not a key: nothing hashes it, and the walk visits each shared tuple once."""
    judged(audit_both(zipped(tmp_path, "dag.pth", stop(DAG + b"0]h\x3ca"))), "UNKNOWN")


COLLIDING = b"".join(colliding_ints(5000))


@pytest.mark.parametrize("route", ["OrderedDict(pairs)", "set()", "frozenset()", "Counter()", "SETITEMS"])
def test_colliding_int_keys(tmp_path, route):
    pairs = b"".join(tup(k, b"N") for k in colliding_ints(5000))
    body = {"OrderedDict(pairs)": glob("collections", "OrderedDict") + b"(](" + pairs + b"etR",
            "set()": glob("builtins", "set") + b"(](" + COLLIDING + b"etR",
            "frozenset()": glob("builtins", "frozenset") + b"(](" + COLLIDING + b"etR",
            "Counter()": glob("collections", "Counter") + b"(](" + COLLIDING + b"etR",
            "SETITEMS": b"}(" + b"".join(k + b"N" for k in colliding_ints(5000)) + b"u"}[route]
    judged(audit_both(zipped(tmp_path, "collide.pth", stop(body))), "UNREADABLE", "max_equal_hashes=16")


def test_int_key_hashing_is_charged_by_digits(tmp_path):
    """A memoized 1 MB int used as a key in 100,000 dicts: Python hashes it digit by digit, every time."""
    big = i((1 << (8 << 20)) - 1)
    body = big + b"q\x00](" + b"}h\x00Ns" * 100_000 + b"e"
    judged(audit_both(zipped(tmp_path, "bigint.pth", stop(body))), "UNREADABLE", "max_hash_work")


# -- memo ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, verdict, needle", [
    (b"9" * 5000, "UNREADABLE", "PUT argument is not an integer"),  # past Python's 4,300-digit int limit
    (str(1 << 63).encode(), "UNREADABLE", "PUT argument overflows"),  # past Py_ssize_t, where C stops too
    (str(1 << 62).encode(), "UNKNOWN", ""),  # a dict key to us: no array of 2**62 slots, as C would allocate
], ids=["5000 digits", "2**63", "2**62"])
def test_text_put_with_any_int(tmp_path, key, verdict, needle):
    judged(audit_both(zipped(tmp_path, "put.pth", stop(b"Np" + key + b"\n"))), verdict, needle)


# -- stand-ins that copy ----------------------------------------------------------------------------------------------
def test_bytearray_standin_copying(tmp_path):
    """bytearray() of one memoized 100 kB value, 20,000 times, every copy kept: 2 GB from 100 kB."""
    blob = b"B" + struct.pack("<I", 100_000) + bytes(100_000)
    body = blob + b"q\x00" + glob("builtins", "bytearray") + b"q\x01](" + b"h\x01(h\x00tR" * 20_000 + b"e"
    judged(audit_both(zipped(tmp_path, "bytearray.pth", stop(body))), "UNREADABLE", "max_value_bytes")


def test_size_standin_copying(tmp_path):
    """torch.Size() of one memoized 100,000-int list, 300,000 times: each call copied and checked it, uncharged."""
    body = (glob("torch", "Size") + b"q\x01]q\x02(" + b"K\x01" * 100_000 + b"e](" + b"h\x01(h\x02tR" * 300_000
            + b"e")
    judged(audit_both(zipped(tmp_path, "size.pth", stop(body))), "UNREADABLE", "max_elements")


# -- the walker ------------------------------------------------------------------------------------------------------
def test_wide_tuple_key_in_the_walker(tmp_path):
    """A 10 kB tuple key over a tensor: str(key) made every path under it gigabytes long."""
    wide = b"(" + b"N" * 10_000 + b"t"
    pkl = stop(b"}" + s("network") + b"}" + wide + tensor() + b"s" + b"s")
    inspect, scan = audit_both(zipped(tmp_path, "wide.pth", pkl, {"0": bytes(16)}), "--tensors")
    judged((inspect, scan), "UNKNOWN")


# -- the per-file budget ---------------------------------------------------------------------------------------------
#: one opcode (or three) repeated up to the budget: every kind of object a pickle can mass-produce
KINDS = {
    "empty sets": b"](" + b"\x8f" * 6_100_000 + b"e",
    "one-entry dicts": b"Nq\x00](" + b"}h\x00h\x00s" * 1_650_000 + b"e",
    "MEMOIZE": b"N" + b"\x94" * 4_100_000,
    "records of calls": glob("foo", "Bar") + b"q\x00](" + b"h\x00)\x81" * 1_400_000 + b"e",
}


def test_sets_and_other_objects_within_every_limit(tmp_path):
    """Within every other limit, what a pickle builds stays under the ceiling: the budget charges each object by
    its size (an empty set is 232 bytes), and the fallback scan never runs beside the failed read. Empty sets (the
    issue's case) go through inspect and scan; the other kinds, each as slow to build, through inspect."""
    paths = {kind: zipped(tmp_path, kind.replace(" ", "_") + ".pth", stop(body)) for kind, body in KINDS.items()}
    runs = measure(["scan", "--format", "json", paths["empty sets"]],
                   *[["inspect", "--format", "json", path] for path in paths.values()])
    judged((runs[0], runs[1]), "UNREADABLE", "max_elements")
    judged((runs[2],), "UNREADABLE", "max_elements")
    judged((runs[3],), "UNREADABLE", "max_memo")
    judged((runs[4],), "UNSAFE", "foo.Bar")


def test_a_long_string_costs_its_value_once(tmp_path):
    """A 120 MB BINUNICODE8 value: read (not copied) from the pickle, decoded once."""
    n = 120 * MiB
    judged(audit_both(zipped(tmp_path, "text.pth", stop(b"\x8d" + struct.pack("<Q", n) + b"a" * n))), "UNKNOWN")


def test_json_header_bomb(tmp_path):
    """90 MB of safetensors header ({},{},...) is 30 million dicts (2 GiB) to json.loads."""
    head = b'{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"z":[' + b"{}," * 30_000_000 + b"{}]}"
    judged(audit_both(write(tmp_path, "bomb.safetensors", safetensors(head, bytes(4)))), "UNREADABLE", "max_elements")


def test_wrapper_prefix_key(tmp_path):
    """One key of 300,000 'module.' prefixes: fingerprinting stripped them one copy at a time (a minute)."""
    pkl = state_dict((s("module." * 300_000 + "w"), tensor()))
    judged(audit_both(zipped(tmp_path, "prefix.pth", pkl, {"0": bytes(16)})), "UNKNOWN")


# -- containers ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("margin, verdict, needle", [(1, "UNKNOWN", ""), (-1, "UNREADABLE", "unzip the archive first")],
                         ids=["just under", "just over"])
def test_inner_deflated_checkpoint_near_max_inflate(tmp_path, margin, verdict, needle):
    """An outer zip holding a deflated torch zip declaring max_inflate_bytes - 1 (192 MiB - 1) or + 1."""
    size = 192 * MiB - margin
    deflated, crc, real = deflated_zip_of_zeros(size, state_dict((s("w"), s("x"))))
    assert real == size
    path = write(tmp_path, "outer.zip", raw_zip([("drive/model.pth", deflated, size, crc)]))
    judged(audit_both(path), verdict, needle)


def test_deflated_storage_over_max_inflate(tmp_path):
    """A 200 MiB storage of zeros deflated to 200 kB (any size up to max_storage_bytes=64 GiB): --hash inflated it
    whole."""
    from fixtures.hostile import deflate_zeros

    n = 200 * MiB
    data, crc = deflate_zeros(n)
    pkl = state_dict((s("w"), tensor("0", n // 4)))
    path = write(tmp_path, "storage.pth", raw_zip([("a/data.pkl", pkl, len(pkl), None), ("a/version", b"3\n", 2, None),
                                                   ("a/data/0", data, n, crc)]))
    judged(audit_both(path, "--hash"), "UNREADABLE", "max_inflate_bytes")


def _time_ratio(small: list[Measured], large: list[Measured]) -> float:
    return sum(r.seconds for r in large) / max(sum(r.seconds for r in small), 1e-3)


def test_outer_zip_with_many_trees(tmp_path):
    """N extracted checkpoints in one outer zip: each tree listed every member (quadratic: 4N took 16x)."""
    runs = {}
    for n in (500, 2000):
        path = write(tmp_path, f"trees{n}.zip", outer_with_trees(n))
        runs[n] = measure(["scan", "--format", "json", path])
        bounded(*runs[n])
        assert runs[n][0].json()["summary"]["counts"]["UNKNOWN"] == n and runs[n][0].code == 0
    assert _time_ratio(runs[500], runs[2000]) < 7, "4x the trees must cost about 4x the time"


def test_tar_with_many_records(tmp_path):
    """A torch <= 0.3 tar with N storage records: linear (4N about 4x), and 1,000,000 refused at once."""
    runs = {}
    for n in (10_000, 40_000):
        runs[n] = audit_both(write(tmp_path, f"tar{n}.tar", tar_checkpoint(n)))
        judged(runs[n], "UNKNOWN")
    assert _time_ratio(list(runs[10_000]), list(runs[40_000])) < 7
    claimed = tar_checkpoint(0, storages=stop(i(1_000_000)))  # the count comes first; records would follow
    judged(audit_both(write(tmp_path, "tar1m.tar", claimed)), "UNREADABLE", "max_members")


def test_outer_zip_with_one_byte_members(tmp_path):
    """N one-byte members: linear, RSS per member small, the report the same size whatever N."""
    runs = {}
    for n in (25_000, 100_000):
        path = write(tmp_path, f"members{n}.zip", zip_of([(f"m/{k}", b"x") for k in range(n)]))
        runs[n] = audit_both(path)
        judged(runs[n], "UNREADABLE", "holds no checkpoint")
    assert _time_ratio(list(runs[25_000]), list(runs[100_000])) < 7
    small, large = (len(runs[n][1].stdout) for n in (25_000, 100_000))
    assert large < 1.1 * small and large < 256 << 10, "skipped members past max_report_items are only counted"
    per_member = (runs[100_000][1].peak_mib - runs[25_000][1].peak_mib) / 75_000
    at_the_limit = runs[100_000][1].peak_mib + per_member * (250_000 - 100_000)  # max_members
    assert at_the_limit < RSS_MIB, f"{at_the_limit:.0f} MiB at 250,000 members"


def test_outer_zip_with_a_million_members(tmp_path):
    """The issue's file: 1,000,000 one-byte members (1.3 GiB, 110 MB of JSON before); refused by max_members."""
    path = write(tmp_path, "members1m.zip", zip_of([(f"m/{k}", b"x") for k in range(1_000_000)]))
    judged(audit_both(path), "UNREADABLE", "max_members")


def test_outer_zip_with_members_named_like_checkpoints(tmp_path):
    """N one-byte members named *.pth: never skipped, but past max_report_items (1,000) only tallied. Before, each
    was its own UNREADABLE result: 160 MiB and 17 MB of JSON at 25,000; 580 MiB and 70 MB at 100,000."""
    runs = {}
    for n in (25_000, 100_000):
        runs[n] = audit_both(write(tmp_path, f"pth{n}.zip", zip_of([(f"m/{k}.pth", b"x") for k in range(n)])))
        judged(runs[n], "UNREADABLE", f"{n - 1000:,} more member(s) UNREADABLE")
        for run in runs[n]:  # the summary still counts every member
            summary = run.json()["summary"]
            assert summary["counts"]["UNREADABLE"] == summary["files"] == n
    small, large = (len(runs[n][1].stdout) for n in (25_000, 100_000))
    assert large < 1.1 * small and large < 1 << 20, "results past max_report_items are only tallied"


def test_unsafe_member_past_the_report_cap_still_fails(tmp_path):
    """A member that torch would run, behind 1,500 that are not checkpoints: UNSAFE, exit 4, its global named."""
    members = [(f"m/{k}.pth", b"x") for k in range(1_500)] + [("m/last.pth", torch_zip(stop(EVIL)))]
    inspect, scan = audit_both(write(tmp_path, "behind.zip", zip_of(members)))
    bounded(inspect, scan)
    for run in (inspect, scan):
        assert run.code == EXIT["UNSAFE"]
        unsafe = [f for f in run.json()["files"] if f["verdict"] == "UNSAFE"]
        assert len(unsafe) == 1 and "1 more member(s) UNSAFE" in unsafe[0]["reason"]
        assert "os.system" in {g["name"] for g in unsafe[0]["globals"]}


# -- numbers no renderer can print -----------------------------------------------------------------------------------
def test_huge_ints(tmp_path):
    """Ints past 4,300 digits (a key, an epoch), past a float (a shape), past numpy (70 dimensions)."""
    big_key = state_dict((i(10 ** 5000), tensor()), (s("epoch"), i(10 ** 5000)), (i(1 << 70000), b"N"))
    huge_shape = b'{"w":{"dtype":"F32","shape":[0,' + str(10 ** 4000).encode() + b'],"data_offsets":[0,0]}}'
    dims70 = glob("torch._utils", "_rebuild_tensor_v2") + tup(
        tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(1)) + b"Q", i(0), tup(*[i(1)] * 70),
        tup(*[i(1)] * 70), b"\x89", b"}") + b"R"
    numel = glob("torch._utils", "_rebuild_tensor_v2") + tup(
        tup(s("storage"), glob("torch", "FloatStorage"), s("0"), s("cpu"), i(1)) + b"Q", i(0),
        tup(*[i(1 << 61)] * 250), tup(*[i(0)] * 250), b"\x89", b"}") + b"R"
    cases = [(zipped(tmp_path, "key.pth", big_key, {"0": bytes(16)}), "UNKNOWN", ""),
             (write(tmp_path, "shape.safetensors", safetensors(huge_shape)), "UNREADABLE", "below 2**62"),
             (zipped(tmp_path, "dims.pth", stop(b"}" + s("w") + dims70 + b"s"), {"0": bytes(4)}), "UNREADABLE",
              "70 dimensions"),
             (zipped(tmp_path, "numel.pth", stop(b"}" + s("w") + numel + b"s"), {"0": bytes(4)}), "UNREADABLE",
              "max_storage_bytes")]
    for path, verdict, needle in cases:
        runs = measure(*[["inspect", "--format", fmt, "--hash", "--tensors", path]
                         for fmt in ("table", "text", "markdown", "json", "sarif")],
                       ["scan", "--format", "json", "--hash", path], ["tensors", path])
        bounded(*runs)
        judged((runs[3], runs[5]), verdict, needle)
        assert {r.code for r in runs[:6]} == {EXIT[verdict]}
        assert runs[6].code in (0, 3)


# -- safety does not depend on structure -----------------------------------------------------------------------------
@pytest.mark.parametrize("route", ["17 colliding keys", "201-deep key", "end-of-zip signature in the last 21 bytes"])
def test_limit_tripped_before_an_unsafe_global(tmp_path, route):
    """torch runs all three; the structure trips a limit (or a parser) first, and the global is still named."""
    if route == "17 colliding keys":
        path = zipped(tmp_path, "c.pth", stop(b"}(" + b"".join(k + b"N" for k in colliding_ints(17)) + b"u0" + EVIL))
    elif route == "201-deep key":
        path = zipped(tmp_path, "d.pth", stop(b"}" + deep_tuple(201) + b"Ns0" + EVIL))
    else:  # miniz skips a signature with fewer than 22 bytes after it: the real end record is found
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("archive/data.pkl", stop(EVIL))
            z.writestr("archive/version", "3\n")
            z.comment = b"xyzPK\x05\x06abc"
        path = write(tmp_path, "eocd.pth", buf.getvalue())
    judged(audit_both(path), "UNSAFE", "os.system")


# -- never leave the input -------------------------------------------------------------------------------------------
def test_data_folder_as_a_symlink(tmp_path):
    """An extracted folder whose data/ links outside: only the last component used to be checked."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "0").write_bytes(b"SECRET!!" * 2)
    root = tmp_path / "ckpt"
    root.mkdir()
    (root / "data.pkl").write_bytes(state_dict((s("w"), tensor())))
    (root / "data").symlink_to(outside)
    out = tmp_path / "out.safetensors"
    inspect, scan, hashed, convert = measure(["inspect", "--format", "json", root], ["scan", "--format", "json", root],
                                             ["inspect", "--format", "json", "--hash", root], ["convert", root, out])
    judged((inspect, scan, hashed), "UNREADABLE", "symlink")
    bounded(convert)
    assert convert.code == 3 and "symlink" in convert.stderr
    assert not out.exists()


# -- terminal-safe output --------------------------------------------------------------------------------------------
def test_escape_sequences_in_file_controlled_names(tmp_path):
    """Zip member names, keys and tensor names with cursor-up, erase-line and an OSC 52 clipboard write."""
    inner = torch_zip(state_dict((s("w" + ESC), tensor())), {"0": bytes(16)}, prefix="arch" + ESC)
    path = write(tmp_path, "names.zip", zip_of([("d" + ESC + "/model.pth", inner), ("n" + ESC + ".txt", b"x"),
                                               ("e" + ESC + ".pth", b"not a checkpoint")]))
    formats = ("table", "text", "markdown", "sarif")
    runs = measure(*[["scan", "-v", "--tensors", "--format", fmt, path] for fmt in formats],
                   ["scan", "-v", "--tensors", "--format", "json", path], ["inspect", "--format", "text", path])
    bounded(*runs)
    for r in runs:
        assert "\x1b" not in r.stdout and "\x07" not in r.stdout, r.args
        assert "\x1b" not in r.stderr and "\x07" not in r.stderr, r.args
        assert r.code == 3  # the junk member named .pth is UNREADABLE; the rest still audited
    report = runs[len(formats)].json()  # JSON stays exact: the names decode to the raw characters
    names = [f["path"] for f in report["files"]] + [k["path"] for k in report["summary"]["skipped"]]
    assert sum(ESC in name for name in names) == 3, names
    assert any(f["verdict"] == "UNKNOWN" and ESC in f["path"] for f in report["files"])


def test_unsafe_row_is_not_hidden_by_the_next(tmp_path):
    """A hostile row right after an UNSAFE one cannot move the cursor up and erase it."""
    evil = write(tmp_path, "a.pth", torch_zip(stop(EVIL)))
    write(tmp_path, "b" + ESC + ".pth", b"junk")
    (table,) = measure(["scan", "--format", "table", tmp_path])
    assert table.code == 4 and "UNSAFE" in table.stdout and "\x1b" not in table.stdout
    assert os.fspath(evil.name) in table.stdout
