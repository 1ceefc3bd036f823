"""Running the app with uvicorn: in the foreground (``edgefer serve``) or on a thread (tests, demo)."""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from .http import listening_socket, server_config
from .limits import ServerLimits

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """Serve an app on a thread; ``port=0`` picks a free port. Use as a context manager so it always stops."""

    def __init__(
        self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0, limits: ServerLimits | None = None
    ) -> None:
        self.socket = listening_socket(host, port)
        self.host, self.port = self.socket.getsockname()[:2]
        limits = limits or ServerLimits(graceful_shutdown_s=2)
        self.server = uvicorn.Server(server_config(app, limits, host=host, port=self.port))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {self.url} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
