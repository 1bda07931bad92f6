"""The clean seed checkpoints every mutant starts from.

torch writes the zip and legacy seeds (in the oracle worker, see :func:`torch_parts`);
they are then made byte-for-byte deterministic: the zip's random
``.data/serialization_id`` is replaced, and the legacy format's storage keys
(``str(storage._cdata)``, a memory address) are renamed ``"0"``, ``"1"``... The
torch <= 0.3 tar comes from ``tests/fixtures/legacy_tar.py`` and the safetensors
file is written here by hand.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from . import pickles
from .zipfmt import Member, read_members

#: Element size of each legacy storage type torch writes for the seed object.
STORAGE_ITEMSIZE = {"FloatStorage": 4, "HalfStorage": 2, "LongStorage": 8, "BoolStorage": 1,
                    "BFloat16Storage": 2, "DoubleStorage": 8, "IntStorage": 4, "ByteStorage": 1}


@dataclass
class Seeds:
    """Parts of the clean seeds, ready to be reassembled by the mutant classes."""

    zip_members: list[Member]  #: torch.save zip members, in file order ("archive/...")
    zip_alt_pkl: bytes  #: another clean data.pkl over the same storages (its keys say "alt")
    legacy_pickles: list[bytes]  #: magic, protocol, sys_info, main object, storage keys
    legacy_alt_main: bytes  #: another clean main pickle over the same storages
    legacy_storages: list[tuple[str, int, bytes]]  #: (key, element size, bytes), in key order
    tar: bytes  #: a torch <= 0.3 tar
    safetensors: bytes

    @property
    def zip_pkl(self) -> bytes:
        """The seed zip's data.pkl."""
        return next(m.data for m in self.zip_members if m.name.endswith(b"/data.pkl"))

    def legacy(self) -> bytes:
        """The clean legacy stream, reassembled."""
        return legacy_bytes(self.legacy_pickles, self.legacy_storages)


def legacy_bytes(pickle_list: list[bytes], storages: list[tuple[str, int, bytes]],
                 counts: list[int] | None = None) -> bytes:
    """Pickles, then per storage an int64 element count and its bytes (``counts`` may lie)."""
    out = b"".join(pickle_list)
    for n, (_key, itemsize, raw) in enumerate(storages):
        count = len(raw) // itemsize if counts is None else counts[n]
        out += struct.pack("<q", count) + raw
    return out


def seed_objects(torch):
    """The object every seed holds, and an alternative over the very same tensors.

    A few dtypes, a tied (shared) tensor, a view with a storage offset and a
    transposed view. The alternative has other names but meets the tensors in
    the same order, so torch gives its storages the same keys.
    """
    from collections import OrderedDict

    g = torch.Generator().manual_seed(1234)
    w = torch.randn(2, 3, 2, 2, generator=g)
    m = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd = OrderedDict([("conv.weight", w), ("conv.bias", torch.tensor([0.5, -1.25], dtype=torch.float16)),
                      ("bn.num_batches_tracked", torch.tensor(7)), ("tied", w), ("row", w[1]),
                      ("mt", m.t()), ("mask", torch.tensor([True, False, True])),
                      ("bf", torch.tensor([1.5, -2.0], dtype=torch.bfloat16))])
    alt = OrderedDict((f"alt.{k}", v) for k, v in sd.items())
    return {"state_dict": sd, "epoch": 3, "history": [m]}, {"alt_state_dict": alt, "epoch": 99, "history": [m]}


def torch_parts() -> dict:
    """Write the zip and legacy seeds with torch (runs in the oracle worker) and normalise them."""
    import io

    import torch

    def save(obj, **kw) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf, **kw)
        return buf.getvalue()

    obj, alt = seed_objects(torch)
    zip_data = save(obj)
    zip_alt = save(alt)
    alt_pkl = next(m.data for m in read_members(zip_alt) if m.name.endswith(b"/data.pkl"))
    members = [m.but(data=b"0" * 20) if m.name.endswith(b".data/serialization_id") else m
               for m in read_members(zip_data)]
    legacy = save(obj, _use_new_zipfile_serialization=False)
    legacy_alt = save(alt, _use_new_zipfile_serialization=False)
    return {"zip_members": [(m.name, m.data) for m in members], "zip_alt_pkl": alt_pkl,
            **_split_legacy(legacy, legacy_alt)}


def _split_legacy(data: bytes, alt: bytes) -> dict:
    parts, pos = [], 0
    for _ in range(5):
        end = pickles.end_of(data, pos)
        parts.append(data[pos:end])
        pos = end
    alt_parts, apos = [], 0
    for _ in range(5):
        end = pickles.end_of(alt, apos)
        alt_parts.append(alt[apos:end])
        apos = end
    keys = [arg for name, arg in pickles.ops(parts[4]) if name in ("BINUNICODE", "SHORT_BINUNICODE")]
    mapping = {k: str(i) for i, k in enumerate(keys)}
    itemsize = _storage_itemsizes(parts[3])
    storages = []
    for key in keys:
        (count,) = struct.unpack_from("<q", data, pos)
        size = itemsize[key]
        storages.append((mapping[key], size, data[pos + 8:pos + 8 + count * size]))
        pos += 8 + count * size
    renamed = [pickles.rename_strings(p, mapping) for p in parts[3:5]]
    return {"legacy_pickles": parts[:3] + renamed, "legacy_storages": storages,
            "legacy_alt_main": pickles.rename_strings(alt_parts[3], mapping)}


def _storage_itemsizes(main: bytes) -> dict[str, int]:
    # Our own freshly written seed, read with stand-ins that only record each persistent id.
    import io
    import pickle

    sizes: dict[str, int] = {}

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            if name.endswith("Storage"):
                return name
            if module == "collections":
                return super().find_class(module, name)
            return lambda *args, **kwargs: None

        def persistent_load(self, pid):
            sizes[pid[2]] = STORAGE_ITEMSIZE[pid[1]]
            return None

    Recorder(io.BytesIO(main)).load()
    return sizes


def safetensors_bytes(tensors: dict[str, tuple[str, list[int], bytes]], metadata: dict | None = None,
                      pad_to: int = 8) -> bytes:
    """A safetensors file from ``name -> (dtype code, shape, raw bytes)``, written by hand."""
    header, blob = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (code, shape, raw) in tensors.items():
        header[name] = {"dtype": code, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % pad_to)
    return struct.pack("<Q", len(text)) + text + blob


def assemble(parts: dict) -> Seeds:
    """Seeds from :func:`torch_parts` plus the torch-free ones."""
    from fixtures.legacy_tar import SAMPLE, build

    st = safetensors_bytes({"w": ("F32", [2, 3], struct.pack("<6f", *range(6))),
                            "b": ("I64", [2], struct.pack("<2q", 7, -7))})
    return Seeds(zip_members=[Member(n, d) for n, d in parts["zip_members"]], zip_alt_pkl=parts["zip_alt_pkl"],
                 legacy_pickles=parts["legacy_pickles"], legacy_alt_main=parts["legacy_alt_main"],
                 legacy_storages=parts["legacy_storages"], tar=build(SAMPLE), safetensors=st)
