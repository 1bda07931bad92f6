"""The harness side of the torch oracle: start the worker, ask it things, restart it if it wedges."""

from __future__ import annotations

import os
import pickle
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent


class OracleError(RuntimeError):
    """The worker could not answer (it died or did not reply in time)."""


class Oracle:
    """torch.load as ground truth, one forked child per load (see :mod:`.oracle_worker`).

    ``timeout`` bounds one load; the worker itself is restarted when it does not
    answer within ``timeout + 20`` seconds.
    """

    def __init__(self, python: str = sys.executable, timeout: float = 10.0):
        self.python = python
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS_DIR), env.get("PYTHONPATH", "")])
        for var in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
            env.pop(var, None)  # the oracle must use torch.load's documented defaults
        self.proc = subprocess.Popen([self.python, "-m", "differential.oracle_worker"], cwd=str(TESTS_DIR),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env)

    def _ask(self, request: dict, deadline: float) -> dict:
        data = pickle.dumps(request)
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
            head = self._read(4, deadline)
            (n,) = struct.unpack("<I", head)
            return pickle.loads(self._read(n, deadline))
        except (OSError, OracleError, struct.error) as exc:
            self.restart()
            raise OracleError(f"oracle worker failed on {request.get('op')}: {exc}") from None

    def _read(self, n: int, deadline: float) -> bytes:
        fd = self.proc.stdout.fileno()
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise OracleError("no reply in time")
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise OracleError("worker exited")
            out += chunk
        return bytes(out)

    def restart(self) -> None:
        """Kill the worker (only the process this object started) and start a fresh one."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.restarts += 1
        self._start()

    def load(self, path: str | Path, mode: str) -> dict:
        """torch's result for ``path`` in mode ``A``, ``B`` or ``C`` (see the worker's docstring)."""
        req = {"op": "load", "path": str(path), "mode": mode, "timeout": self.timeout}
        return self._ask(req, time.monotonic() + self.timeout + 20)

    def seed_parts(self) -> dict:
        """The torch-written seed parts (see :func:`.seeds.torch_parts`)."""
        reply = self._ask({"op": "seeds"}, time.monotonic() + 120)
        if "error" in reply:
            raise OracleError(reply["error"])
        return reply

    def version(self) -> dict:
        """``{"torch": ..., "python": ...}`` of the worker."""
        return self._ask({"op": "version"}, time.monotonic() + 120)

    def close(self) -> None:
        """Stop the worker."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> "Oracle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
