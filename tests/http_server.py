"""A local HTTP server for remote-read tests: Range on or off, redirects, faults, and a request log.

It binds to 127.0.0.1 on a free port and serves in a thread; nothing leaves the machine.
The log records what the *server* saw and sent, so tests check the client's own counters
against an independent account.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Hit:
    """One request as the server saw it."""

    path: str
    range: str | None
    status: int
    sent: int = 0


@dataclass
class Behaviour:
    """What the server does; tests flip these between requests."""

    ranges: bool = True  #: honour Range (206), else always 200 with the whole body
    redirects: dict[str, str] = field(default_factory=dict)  #: path -> Location (302)
    wrong_range: bool = False  #: announce a Content-Range one byte off from what was asked
    truncate_to: int | None = None  #: send at most this many body bytes, then close the connection
    delay: float = 0.0  #: seconds to wait before answering (a slow server)
    fail_first: list[int] = field(default_factory=list)  #: statuses to answer before serving normally
    content_length: str | None = None  #: override the Content-Length header
    rate: float | None = None  #: body bytes per second (a slower link), None for as fast as possible


class LocalServer:
    """Serve ``files`` (URL path -> bytes or a file Path) on 127.0.0.1 until :meth:`stop`."""

    def __init__(self, files: dict[str, bytes | Path]):
        self.files = files
        self.behaviour = Behaviour()
        self.log: list[Hit] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # a client hanging up is not a test failure
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "LocalServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    def url(self, name: str) -> str:
        """The URL of ``name`` (percent-encoded, as a browser would write it)."""
        return f"http://127.0.0.1:{self.port}/{quote(name)}"

    def record(self, hit: Hit) -> None:
        with self._lock:
            self.log.append(hit)

    @property
    def bytes_sent(self) -> int:
        return sum(h.sent for h in self.log)

    def reset(self) -> None:
        self.log.clear()
        self.behaviour = Behaviour()


def _size(body: bytes | Path) -> int:
    return len(body) if isinstance(body, bytes) else body.stat().st_size


def _chunks(body: bytes | Path, start: int, end: int):
    if isinstance(body, bytes):
        yield body[start:end]
        return
    with open(body, "rb") as fh:
        fh.seek(start)
        left = end - start
        while left > 0:
            data = fh.read(min(left, 1 << 20))
            if not data:
                return
            left -= len(data)
            yield data


def _handler(server: LocalServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            b = server.behaviour
            path = unquote(self.path.split("?", 1)[0].lstrip("/"))
            hit = Hit(path, self.headers.get("Range"), 0)
            server.record(hit)
            if b.delay:
                time.sleep(b.delay)
            if b.fail_first:
                return self._status(hit, b.fail_first.pop(0))
            if path in b.redirects:
                hit.status = 302
                self.send_response(302)
                self.send_header("Location", b.redirects[path])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = server.files.get(path)
            if body is None:
                return self._status(hit, 404)
            self._serve(hit, body, b)

        def _status(self, hit: Hit, code: int) -> None:
            hit.status = code
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _serve(self, hit: Hit, body: bytes | Path, b: Behaviour) -> None:
            size = _size(body)
            start, end, status = 0, size, 200
            match = _RANGE.match(hit.range or "") if b.ranges else None
            if match:
                first, last = match.groups()
                if first == "":
                    start, end = max(0, size - int(last)), size
                else:
                    start, end = int(first), min(size, int(last) + 1 if last else size)
                status = 206
            hit.status = status
            self.send_response(status)
            self.send_header("ETag", '"v1"')
            self.send_header("Accept-Ranges", "bytes" if b.ranges else "none")
            if status == 206:
                shift = 1 if b.wrong_range else 0
                self.send_header("Content-Range", f"bytes {start + shift}-{end - 1 + shift}/{size}")
            self.send_header("Content-Length", b.content_length or str(end - start))
            self.end_headers()
            budget = end - start if b.truncate_to is None else min(end - start, b.truncate_to)
            for chunk in _chunks(body, start, end):
                chunk = chunk[:budget]
                if not chunk:
                    break
                self.wfile.write(chunk)
                if b.rate:
                    time.sleep(len(chunk) / b.rate)
                hit.sent += len(chunk)
                budget -= len(chunk)
            if b.truncate_to is not None:
                self.close_connection = True

    return Handler
