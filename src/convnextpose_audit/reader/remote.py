"""Checkpoints over HTTP(S): a random-access :class:`ByteSource` built on Range requests.

An audit needs about 1% of a checkpoint: the zip's end record and central
directory, then ``data.pkl``. :class:`RemoteSource` reads the tail of the file
first (which also tells the size), then fetches only the byte ranges the
reader asks for, coalescing near ones and keeping every fetched byte for the
run. Tensor bytes (``--hash``, ``diff``, ``convert``, ``verify``) need the whole
file: it is downloaded once, into a temporary file, and said so on stderr. A
server that ignores Range gets the same single download.

``requests`` is imported only when a URL is opened, so local audits stay fast.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import mmap
import os
import re
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, replace
from typing import Callable, Iterator
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import DownloadFailed, LimitExceeded
from .source import URL_SCHEMES, ByteSource, FileSource, is_url

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
SCHEMES = URL_SCHEMES
HF_ENDPOINT = "https://huggingface.co"
_HF_KINDS = ("datasets", "spaces")
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)

#: Where one-line notes go (a callable taking the message); replaced by tests and library users.
Notify = Callable[[str], None]


def resolve_url(url: str) -> str:
    """The HTTP(S) URL to fetch: ``hf://owner/repo[@revision]/path`` becomes the Hub's ``resolve`` URL.

    ``hf://datasets/owner/repo/...`` and ``hf://spaces/...`` are supported; a
    revision containing ``/`` is written percent-encoded (``@refs%2Fpr%2F1``).
    http(s) URLs are returned unchanged.
    """
    if not url[:5].lower() == "hf://":
        return url
    parts = url[5:].split("/")
    kind = parts.pop(0) + "/" if parts and parts[0] in _HF_KINDS else ""
    if len(parts) < 3 or not all(parts[:3]):
        raise DownloadFailed(f"{url}: an hf:// URL needs owner/repo/path (hf://owner/repo[@revision]/path)")
    owner, repo, path = parts[0], parts[1], "/".join(parts[2:])
    repo, _, revision = repo.partition("@")
    revision = quote(unquote(revision or "main"), safe="")
    return f"{HF_ENDPOINT}/{kind}{owner}/{repo}/resolve/{revision}/{quote(unquote(path), safe='/')}"


def display_url(url: str) -> str:
    """``url`` without user name or password, for reports and error messages."""
    if "@" not in url.split("/", 3)[2 if "://" in url else 0]:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class RemoteOptions:
    """Bounds and tuning of remote reads. ``from_env`` reads ``CNXP_AUDIT_HTTP_TIMEOUT``/``_RETRIES``."""

    timeout: float = 30.0  #: seconds to connect, and between two received chunks
    request_seconds: float = 300.0  #: wall time one Range request may take in all
    retries: int = 2  #: further attempts after a transient failure (timeout, reset, 5xx, 429)
    backoff: float = 0.5  #: seconds before the first retry; doubles each time, capped at 8 s
    max_file_bytes: int = 64 * GiB  #: refuse larger remote files (and stop a longer body)
    tail_bytes: int = 128 * KiB  #: first request: the file's last bytes (zip end record, central directory)
    min_fetch: int = 256 * KiB  #: read-ahead: a missing range is fetched at least this long
    coalesce_gap: int = 64 * KiB  #: missing ranges closer than this are fetched as one
    max_range_requests: int = 32  #: more scattered reads than this: download the whole file once
    max_redirects: int = 10

    @classmethod
    def from_env(cls) -> "RemoteOptions":
        """Defaults, with ``CNXP_AUDIT_HTTP_TIMEOUT`` (seconds) and ``CNXP_AUDIT_HTTP_RETRIES`` applied."""
        options = cls()
        timeout = os.environ.get("CNXP_AUDIT_HTTP_TIMEOUT")
        retries = os.environ.get("CNXP_AUDIT_HTTP_RETRIES")
        try:
            if timeout:
                options = replace(options, timeout=float(timeout), request_seconds=max(float(timeout) * 10, 1.0))
            if retries:
                options = replace(options, retries=max(0, int(retries)))
        except ValueError:
            raise DownloadFailed("CNXP_AUDIT_HTTP_TIMEOUT/CNXP_AUDIT_HTTP_RETRIES must be numbers") from None
        return options


# -- traffic: counters a caller can collect around one audit ----------------------------------
@dataclass
class Traffic:
    """Bytes received and HTTP requests sent (redirect hops and retries included)."""

    bytes_read: int = 0
    requests: int = 0


_METER: contextvars.ContextVar[Traffic | None] = contextvars.ContextVar("cnxp_remote_traffic", default=None)


@contextlib.contextmanager
def metered() -> Iterator[Traffic]:
    """Collect the traffic of every remote read made inside the block (in this context)."""
    traffic = Traffic()
    token = _METER.set(traffic)
    try:
        yield traffic
    finally:
        _METER.reset(token)


def _stderr_note(message: str) -> None:
    sys.stderr.write(f"cnxp-audit: note: {message}\n")
    sys.stderr.flush()


def size_text(n: int) -> str:
    """``101.2 MB`` style size (decimal units, as the reports use)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


# -- the cache of fetched ranges --------------------------------------------------------------
class RangeCache:
    """Fetched byte ranges of one file: sorted, non-overlapping, adjacent ones merged."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._chunks: list[bytes] = []

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The sub-ranges of ``[start, end)`` not cached yet, in order."""
        gaps, pos = [], start
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        while pos < end and i < len(self._starts):
            s, e = self._starts[i], self._starts[i] + len(self._chunks[i])
            if e <= pos:
                i += 1
                continue
            if s >= end:
                break
            if s > pos:
                gaps.append((pos, s))
            pos = max(pos, e)
            i += 1
        if pos < end:
            gaps.append((pos, end))
        return gaps

    def next_start(self, pos: int) -> int | None:
        """Start of the first cached range beginning after ``pos``, if any."""
        i = bisect.bisect_right(self._starts, pos)
        return self._starts[i] if i < len(self._starts) else None

    def add(self, start: int, data: bytes) -> None:
        """Insert ``data`` at ``start``, merging with overlapping or adjacent ranges."""
        end = start + len(data)
        lo = bisect.bisect_left(self._starts, start)
        if lo > 0 and self._starts[lo - 1] + len(self._chunks[lo - 1]) >= start:
            lo -= 1
        hi = lo
        while hi < len(self._starts) and self._starts[hi] <= end:
            hi += 1
        if lo == hi:
            self._starts.insert(lo, start)
            self._chunks.insert(lo, bytes(data))
            return
        new_start = min(start, self._starts[lo])
        last_end = max(end, self._starts[hi - 1] + len(self._chunks[hi - 1]))
        merged = bytearray(last_end - new_start)
        for s, chunk in zip(self._starts[lo:hi], self._chunks[lo:hi]):
            merged[s - new_start:s - new_start + len(chunk)] = chunk
        merged[start - new_start:end - new_start] = data
        self._starts[lo:hi] = [new_start]
        self._chunks[lo:hi] = [bytes(merged)]

    def get(self, start: int, n: int) -> bytes:
        """``n`` cached bytes at ``start`` (the range must be cached)."""
        i = bisect.bisect_right(self._starts, start) - 1
        s = self._starts[i]
        return self._chunks[i][start - s:start - s + n]

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(len(c) for c in self._chunks)


def plan_fetches(gaps: list[tuple[int, int]], cache: RangeCache, size: int,
                 options: RemoteOptions) -> list[tuple[int, int]]:
    """Turn missing ranges into requests: read ahead to ``min_fetch``, merge ranges closer than ``coalesce_gap``."""
    planned: list[tuple[int, int]] = []
    for start, end in gaps:
        ahead = min(size, max(end, start + options.min_fetch))
        nxt = cache.next_start(start)
        if nxt is not None and nxt >= end:
            ahead = min(ahead, nxt)  # never fetch again what is already held
        if planned and start - planned[-1][1] <= options.coalesce_gap:
            planned[-1] = (planned[-1][0], max(planned[-1][1], ahead))
        else:
            planned.append((start, ahead))
    return planned


# -- HTTP ---------------------------------------------------------------------------------------
class _Http:
    """One ``requests`` session with retries, backoff and one-line errors; counts what it does."""

    def __init__(self, url: str, label: str, options: RemoteOptions, count: Callable[[int, int], None]):
        self.url = url
        self.label = label
        self.options = options
        self._count = count
        self._session = None

    def session(self):
        if self._session is None:
            import requests

            from .. import __version__

            self._session = requests.Session()
            self._session.max_redirects = self.options.max_redirects
            self._session.headers.update({"User-Agent": f"cnxp-audit/{__version__}",
                                          "Accept-Encoding": "identity"})  # Range applies to the raw bytes
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def get(self, headers: dict[str, str], consume: Callable) -> object:
        """GET ``url`` and pass the open response to ``consume``; retry transient failures.

        ``consume`` reads the body and returns a value (returned here); it may
        raise :class:`_Transient` for a retryable problem such as a short body.
        """
        attempt = 0
        while True:
            try:
                return self._attempt(headers, consume)
            except _Transient as exc:
                if attempt >= self.options.retries:
                    raise DownloadFailed(f"{self.label}: {exc}") from None
                time.sleep(min(8.0, exc.retry_after or self.options.backoff * (2 ** attempt)))
                attempt += 1

    def _attempt(self, headers: dict[str, str], consume: Callable) -> object:
        import requests

        try:
            resp = self.session().get(self.url, headers=headers, stream=True, timeout=self.options.timeout)
        except requests.RequestException as exc:
            self._count(0, 1)
            raise self._failure(exc) from None
        self._count(0, len(resp.history) + 1)
        with resp:
            if resp.url != self.url and resp.history:
                self.url = resp.url  # later ranges go straight to where the redirects led
            if resp.status_code in _RETRY_STATUS:
                raise _Transient(_status_text(resp), _retry_after(resp))
            if resp.status_code >= 400:
                raise DownloadFailed(f"{self.label}: {_status_text(resp)}")
            encoding = resp.headers.get("Content-Encoding", "identity").lower()
            if encoding not in ("", "identity"):
                raise DownloadFailed(f"{self.label}: server sent {encoding}-encoded data although asked for raw bytes")
            try:
                return consume(resp)
            except requests.RequestException as exc:
                raise self._failure(exc) from None

    def _failure(self, exc: Exception) -> Exception:
        message, transient = _classify(exc, self.url, self.options)
        return _Transient(message) if transient else DownloadFailed(f"{self.label}: {message}")


class _Transient(Exception):
    """A failure worth retrying; its text is the one-line reason."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _status_text(resp) -> str:
    # The reason phrase is the server's text: printable ASCII only, so it cannot drive a terminal.
    reason = re.sub(r"[^\x20-\x7e]", "?", " ".join(str(resp.reason or "").split()))[:60]
    return f"HTTP {resp.status_code}{' ' + reason if reason else ''}"


def _retry_after(resp) -> float | None:
    value = resp.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


def _classify(exc: Exception, url: str, options: RemoteOptions) -> tuple[str, bool]:
    """A ``requests`` exception as ``(one-line reason, worth retrying)``."""
    import requests

    text = str(exc)
    host = urlsplit(url).netloc.rpartition("@")[2]
    if isinstance(exc, requests.exceptions.SSLError):
        found = re.search(r"\[SSL: [A-Z_]+\] ([^(']+)", text)
        return f"TLS error talking to {host}: {(found.group(1) if found else 'handshake failed').strip()}", False
    if isinstance(exc, requests.exceptions.TooManyRedirects):
        return f"more than {options.max_redirects} redirects", False
    if isinstance(exc, (requests.exceptions.InvalidSchema, requests.exceptions.InvalidURL,
                        requests.exceptions.MissingSchema)):
        return f"not a URL that can be fetched ({' '.join(text.split())[:100]})", False
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"timed out connecting to {host} after {options.timeout:g} s", True
    if isinstance(exc, requests.exceptions.ReadTimeout) or "timed out" in text.lower():
        return f"timed out: {host} sent nothing for {options.timeout:g} s", True
    if isinstance(exc, (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)):
        return "body shorter than announced (the connection closed early)", True
    if "Connection refused" in text or "Errno 111" in text:
        return f"connection refused by {host}", True
    if re.search(r"Name or service not known|nodename nor servname|name resolution|getaddrinfo failed", text):
        return f"cannot resolve host {host.rsplit(':', 1)[0]}", False
    return f"connection to {host} failed ({type(exc).__name__})", True


def _check_length(resp, expected: int, label: str) -> None:
    announced = resp.headers.get("Content-Length")
    if announced is not None and announced.strip() != str(expected):
        raise DownloadFailed(f"{label}: Content-Length {announced.strip()[:20]} does not match the "
                             f"Content-Range ({expected:,} bytes)")


def _content_range(resp, label: str) -> tuple[int, int, int | None]:
    """``(first, last, total)`` from a 206 response's ``Content-Range`` (total None for ``*``)."""
    found = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
    if not found:
        raise DownloadFailed(f"{label}: 206 response without a valid Content-Range "
                             f"({resp.headers.get('Content-Range', 'none')[:60]!r})")
    first, last, total = found.groups()
    return int(first), int(last), None if total == "*" else int(total)


def read_body(resp, expected: int, label: str, seconds: float | None = None, sink=None,
              progress: Callable[[int], None] | None = None, announced: bool = True) -> int | bytes:
    """Read exactly ``expected`` bytes of body: into ``sink`` (returns the count) or returned as bytes.

    A body that ends early is a retryable failure ("shorter than announced"), a
    longer one an error. With ``announced=False`` (no Content-Length),
    ``expected`` is only a cap: more is a :class:`LimitExceeded`, less is fine.
    ``seconds`` bounds the whole read so a server dribbling bytes cannot hold the run.
    """
    parts: list[bytes] = []
    got = 0
    deadline = None if seconds is None else time.monotonic() + seconds
    for chunk in resp.iter_content(chunk_size=256 * KiB):
        got += len(chunk)
        if got > expected:
            if not announced:
                raise LimitExceeded(f"{label}: remote file is longer than the limit of {expected:,} bytes")
            raise DownloadFailed(f"{label}: body longer than announced (more than {expected:,} bytes)")
        if sink is not None:
            sink.write(chunk)
        else:
            parts.append(chunk)
        if progress is not None:
            progress(got)
        if deadline is not None and time.monotonic() > deadline:
            raise _Transient(f"one read took longer than {seconds:g} s (a slow server?)")
    if got < expected and announced:
        raise _Transient(f"body shorter than announced ({got:,} of {expected:,} bytes)")
    return got if sink is not None else b"".join(parts)


class _Bar:
    """A one-line download counter on stderr, drawn only when stderr is a terminal."""

    def __init__(self, label: str, total: int | None):
        self.enabled = sys.stderr.isatty()
        self.label = label[-50:]
        self.total = total
        self._last = 0.0

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last < 0.1 and done != self.total):
            return
        self._last = now
        of = f" / {size_text(self.total)} ({100 * done // max(self.total, 1)}%)" if self.total else ""
        sys.stderr.write(f"\r{self.label}: {size_text(done)}{of}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


# -- the source ---------------------------------------------------------------------------------
class RemoteSource(ByteSource):
    """A file on an HTTP(S) server, read with Range requests (see the module docstring).

    ``bytes_read`` and ``requests`` count the traffic. ``close()`` ends the HTTP
    session; bytes already fetched stay available for the run (a later read
    opens a new session), and a downloaded temporary file is removed when the
    source is garbage-collected.
    """

    def __init__(self, url: str, label: str | None = None, options: RemoteOptions | None = None,
                 notify: Notify | None = None):
        self.label = label or display_url(url)
        self.options = options or RemoteOptions.from_env()
        self.notify = notify or _stderr_note
        self.bytes_read = 0
        self.requests = 0
        self.range_requests = 0
        self._cache = RangeCache()
        self._etag: str | None = None
        self._file = None
        self._map: mmap.mmap | None = None
        self._refs = 1
        self._http = _Http(resolve_url(url), self.label, self.options, self._count)
        try:
            self.size = self._http.get({"Range": f"bytes=-{self.options.tail_bytes}"}, self._take_probe)
        except BaseException:
            self._http.close()
            raise

    # -- counting ------------------------------------------------------------------------------
    def _count(self, nbytes: int, nrequests: int) -> None:
        self.bytes_read += nbytes
        self.requests += nrequests
        meter = _METER.get()
        if meter is not None:
            meter.bytes_read += nbytes
            meter.requests += nrequests

    # -- first request: the tail, which also gives the size --------------------------------------
    def _take_probe(self, resp) -> int:
        if resp.status_code == 416:  # an empty file has no last bytes
            total = _content_range_total(resp)
            if total == 0:
                return 0
            raise DownloadFailed(f"{self.label}: server refused the range request (HTTP 416)")
        if resp.status_code == 200:
            return self._take_whole(resp, "the server ignores Range requests")
        if resp.status_code != 206:
            raise DownloadFailed(f"{self.label}: unexpected {_status_text(resp)}")
        first, last, total = _content_range(resp, self.label)
        if total is None:
            raise DownloadFailed(f"{self.label}: server does not say how long the file is (Content-Range */*)")
        self._check_size(total)
        want_first = max(0, total - self.options.tail_bytes)
        if (first, last) != (want_first, total - 1):
            raise DownloadFailed(f"{self.label}: asked for the last {self.options.tail_bytes:,} bytes, server sent "
                                 f"bytes {first:,}-{last:,} of {total:,} (wrong Content-Range)")
        _check_length(resp, last - first + 1, self.label)
        self._etag = resp.headers.get("ETag")
        data = read_body(resp, last - first + 1, self.label, self.options.request_seconds)
        self._count(len(data), 0)
        self._cache.add(first, data)
        return total

    def _check_size(self, total: int) -> None:
        if total > self.options.max_file_bytes:
            raise LimitExceeded(f"{self.label}: remote file is {total:,} bytes, over the limit of "
                                f"{self.options.max_file_bytes:,}")

    # -- whole-file mode -------------------------------------------------------------------------
    def _take_whole(self, resp, why: str) -> int:
        """Stream a 200 response's body into a temporary file; the source then reads from it."""
        announced = resp.headers.get("Content-Length")
        total = int(announced) if announced and announced.isdigit() else None
        if total is not None:
            self._check_size(total)
        if total is None or total > self.options.tail_bytes:
            self.notify(f"{self.label}: {why}; downloading the whole file once"
                        + (f" ({size_text(total)})" if total is not None else ""))
        fh = tempfile.TemporaryFile(prefix="cnxp-audit-")
        bar = _Bar(self.label, total)
        try:
            expected = total if total is not None else self.options.max_file_bytes
            try:
                read_body(resp, expected, self.label, sink=fh, progress=bar, announced=total is not None)
            finally:
                bar.close()
            fh.flush()
            size = fh.tell()
        except BaseException:
            fh.close()
            raise
        self._count(size, 0)
        self._adopt_file(fh)
        return size

    def _adopt_file(self, fh) -> None:
        if self._file is not None:
            self._file.close()
        self._file = fh
        weakref.finalize(self, _close_quietly, fh)

    def download_whole(self, why: str) -> None:
        """Fetch the entire file once (one request) so later reads are local; no-op if already done."""
        if self._file is not None:
            return

        def take(resp):
            if resp.status_code not in (200, 206):
                raise DownloadFailed(f"{self.label}: unexpected {_status_text(resp)}")
            size = self._take_whole(resp, why)
            if size != self.size:
                raise DownloadFailed(f"{self.label}: the file changed on the server ({size:,} bytes, was {self.size:,})")
            return size

        self._http.get({}, take)

    # -- ranges --------------------------------------------------------------------------------
    def _fetch(self, start: int, end: int) -> None:
        if self.range_requests >= self.options.max_range_requests:
            self.download_whole(f"more than {self.options.max_range_requests} scattered reads")
            return
        self.range_requests += 1
        self._http.get({"Range": f"bytes={start}-{end - 1}"}, lambda resp: self._take_range(resp, start, end))

    def _take_range(self, resp, start: int, end: int) -> None:
        if resp.status_code == 200:  # the server stopped honouring Range
            size = self._take_whole(resp, "the server ignored a Range request")
            if size != self.size:
                raise DownloadFailed(f"{self.label}: the file changed on the server ({size:,} bytes, was {self.size:,})")
            return
        if resp.status_code != 206:
            raise DownloadFailed(f"{self.label}: unexpected {_status_text(resp)} to a Range request")
        first, last, total = _content_range(resp, self.label)
        if (first, last + 1) != (start, end) or total not in (None, self.size):
            raise DownloadFailed(f"{self.label}: asked for bytes {start:,}-{end - 1:,}, server sent {first:,}-{last:,}"
                                 f"/{total if total is not None else '*'} (wrong Content-Range)")
        etag = resp.headers.get("ETag")
        if self._etag and etag and etag != self._etag:
            raise DownloadFailed(f"{self.label}: the file changed on the server while being read (ETag differs)")
        _check_length(resp, end - start, self.label)
        data = read_body(resp, end - start, self.label, self.options.request_seconds)
        self._count(len(data), 0)
        self._cache.add(start, data)

    def pread(self, offset: int, n: int) -> bytes:
        """``n`` bytes at ``offset``: from the cache, else fetched (with read-ahead, near gaps coalesced)."""
        self._check(offset, n)
        if self._file is not None:
            return os.pread(self._file.fileno(), n, offset)
        gaps = self._cache.missing(offset, offset + n)
        for start, end in plan_fetches(gaps, self._cache, self.size, self.options):
            self._fetch(start, end)
            if self._file is not None:
                return os.pread(self._file.fileno(), n, offset)
        return self._cache.get(offset, n)

    def view(self, offset: int, n: int) -> memoryview:
        """Tensor bytes: the whole file is downloaded once (noted on stderr), then mapped."""
        self._check(offset, n)
        if n == 0:
            return memoryview(b"")
        self.download_whole("reading tensor data needs the whole file")
        if self._map is None:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        return memoryview(self._map)[offset:offset + n]

    # -- lifetime (same protocol as FileSource) --------------------------------------------------
    def acquire(self) -> None:
        """Register one more holder of this source."""
        self._refs += 1

    def release(self) -> None:
        """Drop one holder; end the HTTP session when none is left."""
        self._refs -= 1
        if self._refs <= 0:
            self.close()

    def close(self) -> None:
        """End the HTTP session; fetched bytes stay readable (a later miss opens a new session)."""
        self._http.close()


def _content_range_total(resp) -> int | None:
    found = re.match(r"bytes\s+\*/(\d+)", resp.headers.get("Content-Range", ""))
    return int(found.group(1)) if found else None


def _close_quietly(fh) -> None:
    try:
        fh.close()
    except (OSError, BufferError):
        pass


def open_source(path: str, limits=None) -> ByteSource:
    """The byte source for ``path``: a :class:`RemoteSource` for an http(s)/hf URL, else a :class:`FileSource`.

    ``limits`` is accepted for the reader's future use; remote bounds come from
    :class:`RemoteOptions`. Local errors (missing file...) propagate as OSError.
    """
    if is_url(path):
        return RemoteSource(path)
    return FileSource(path)


__all__ = ["RemoteOptions", "RemoteSource", "RangeCache", "Traffic", "display_url", "is_url", "metered",
           "open_source", "plan_fetches", "resolve_url"]
