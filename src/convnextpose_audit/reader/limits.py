"""One frozen, validated set of bounds that every reader path honours."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import LimitExceeded

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Limits:
    """Bounds on the work a hostile file can cause. All values are positive ints.

    The defaults admit every real ConvNeXtPose checkpoint (and far larger models)
    with a wide margin while keeping memory and time bounded on a bomb.
    """

    max_pickle_bytes: int = 256 * MiB  #: size of one pickle stream (data.pkl, legacy pickles)
    max_opcodes: int = 50_000_000  #: opcodes executed in one pickle
    #: memo entries in one pickle (the fallback safety scan, which charges no meter, holds one per entry)
    max_memo: int = 1_000_000
    max_stack: int = 5_000_000  #: values on the unpickler stack (and mark depth)
    max_nesting: int = 200  #: nesting of keys, and of containers walked afterwards (below the C recursion limit)
    max_walk_nodes: int = 20_000_000  #: distinct containers visited when walking the object
    #: distinct non-string keys of one dict or set sharing a hash value; real data has none, while
    #: crafted ints (k * (2**61 - 1)) all hash alike and would make inserts quadratic
    max_equal_hashes: int = 16
    #: entries in a zip / tar / folder tree: a torch archive holds one member per storage plus a few records,
    #: a Drive folder download a handful; at about 13 µs per member a larger count is refused, not ground through
    max_members: int = 250_000
    max_outer_depth: int = 4  #: zips within zips
    #: bytes inflated into memory from deflated zip members (an inner archive with the archives around it, a
    #: deflated data.pkl or storage); a bigger one is refused with a hint to unzip the archive first. They count
    #: against max_value_bytes too, which leaves an inner checkpoint at this bound 64 MiB to be read with
    max_inflate_bytes: int = 192 * MiB
    max_storage_bytes: int = 64 * GiB  #: declared size of one storage
    max_header_bytes: int = 100 * MiB  #: safetensors JSON header
    # The per-file budget (one meter, see meter.py): whatever builds values from a file charges it.
    #: values built from one file, about 48 bytes of memory each (bigger objects cost more: meter.OBJECT_COST).
    #: torch.save of 100,000 tensors takes 4.7 million (47 a tensor), and a real file must read; 5 million
    #: (229 MiB) plus max_value_bytes plus the interpreter stays under the 512 MiB ceiling of SECURITY.md
    max_elements: int = 5_000_000
    #: bytes held for one file: pickles and inflated members read into memory, text, bytes and integer
    #: digits built, paths walked
    max_value_bytes: int = 256 * MiB
    max_hash_work: int = 10_000_000  #: tuple/frozenset nodes visited hashing or comparing keys of one file
    max_seconds: int = 60  #: wall time to read one file's structure (tensor bytes excluded)
    max_report_items: int = 1000  #: skipped members or warnings listed per file before summarising with counts
    #: convert: bytes written may be at most this many times the bytes stored (+64 MiB); views of shared or
    #: stride-0 storage otherwise turn a small file into a huge one
    max_output_expansion: int = 4

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Limits.{f.name} must be a positive int, got {value!r}")

    def check(self, name: str, value: int, what: str) -> None:
        """Raise :class:`LimitExceeded` naming ``what`` if ``value`` exceeds limit ``name``."""
        limit = getattr(self, name)
        if value > limit:
            raise LimitExceeded(f"{what}: {value:,} exceeds limit {name}={limit:,}")


DEFAULT_LIMITS = Limits()
