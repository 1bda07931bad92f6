"""Auditing many files, e.g. a model hub: one pure ``url -> records`` call that an engine can map.

:func:`audit_url` has no shared state beyond a per-process registry cache, returns plain
picklable dicts, and never raises for a bad file or a failed download, so dask, Ray, Spark or
a thread pool can map it over millions of URLs. It reads only what the audit needs (for a
remote torch zip, the tail and the start of the file).
"""

from __future__ import annotations

import functools
from typing import Any

from .audit import AuditOptions, Labels, audit_path
from .render.json import file_entry
from .variants import Registry, load_registry


@functools.lru_cache(maxsize=1)
def _default_registry() -> Registry:
    return load_registry()


def audit_url(url: str, *, registry: Registry | None = None, labels: Labels | None = None,
              options: AuditOptions | None = None) -> list[dict[str, Any]]:
    """Audit the checkpoint(s) at ``url`` (http(s)://, hf:// or a local path) as JSON-ready records.

    One record per checkpoint found (usually one), shaped like a ``files`` entry of
    ``cnxp-audit inspect --format json`` (``path``, ``verdict``, ``inferred``,
    ``bytes_read``, ``requests``, ``exit_code``...). Unreadable, unsafe or unreachable
    files come back as UNREADABLE/UNSAFE records; a bug in the audit becomes an
    UNREADABLE record with ``internal_error`` set, so one file never stops a batch.
    """
    try:
        results, _ = audit_path(url, registry or _default_registry(), labels, options)
    except Exception as exc:  # a bug must not stop a map over thousands of files
        return [{"path": url, "verdict": "UNREADABLE", "error": f"internal error: {exc!r}", "internal_error": True,
                 "exit_code": 70}]
    return [file_entry(r) for r in results]
