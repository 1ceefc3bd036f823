"""``edgefer serve`` in a process of its own, for the demo, benchmarks and tests: started on a free
loopback port, waited for until it is ready, and always stopped.

A server in its own process is the deployed setting: one in a thread of the client's process would
share its interpreter (the GIL) and inflate every latency measured through it.

    with ServerProcess(["--checkpoint", "default", "--no-large"]) as server:
        EdgeRunner("default", strategy="cloud", cloud_url=server.url).predict(face)
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

import httpx

__all__ = ["START_TIMEOUT", "ServerProcess", "free_port", "wait_ready"]

# How long a server may take to answer ready before it counts as failed. Only a failure waits this
# long; on a loaded 2-core machine, importing torch and loading a model took over a minute.
START_TIMEOUT = 300.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float) -> None:
    """Poll ``url``'s readiness until it answers 200; RuntimeError if ``process`` exits first or
    ``timeout`` seconds pass (the caller adds the server's log)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                return
        if process.poll() is not None:
            raise RuntimeError(f"edgefer serve exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"edgefer serve at {url} did not become ready within {timeout:g} s")
        time.sleep(0.02)


class ServerProcess:
    """``edgefer serve ARGS...`` on 127.0.0.1 and a free port (or ``port``).

    Its stderr goes to ``log``, or to a temporary file if none; a server that fails to start raises
    RuntimeError with the end of it.
    """

    def __init__(
        self, args: list[str], *, port: int | None = None, log: Path | None = None, start_timeout: float = START_TIMEOUT
    ) -> None:
        self.args, self.port, self.log, self.start_timeout = list(args), port or free_port(), log, start_timeout
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._stderr: IO[str] | None = None
        self.ready_at: float | None = None  # time.monotonic() when it first answered ready

    def start(self) -> ServerProcess:
        """Start it and wait until ``/v2/health/ready`` answers 200; raises RuntimeError (with the log's tail)
        if it exits or does not come up within ``start_timeout`` seconds."""
        command = [sys.executable, "-m", "edgefer.cli.main", "serve", *self.args, "--port", str(self.port)]
        # open for as long as the server runs; closed by stop()
        self._stderr = self.log.open("w+") if self.log else tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=self._stderr)
        try:
            wait_ready(self.url, self.process, self.start_timeout)
        except RuntimeError as exc:
            tail = self.stderr_tail()
            self.stop()
            raise RuntimeError(f"{exc}: {tail}") from None
        self.ready_at = time.monotonic()
        return self

    def stderr_tail(self, chars: int = 2000) -> str:
        """The end of what the server wrote to stderr so far."""
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()[-chars:]

    def stop(self) -> None:
        """Kill it (as a crash would) and reap it; stopping a stopped server does nothing."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
