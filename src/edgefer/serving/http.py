"""uvicorn with the limits a public server needs: a deadline for the request headers, h11's header
bound, connection and shutdown limits, and JSON for the errors h11 answers itself.

uvicorn has no timeout covering the transmission of a request: ``timeout_keep_alive`` applies only
between requests and is reset by every byte received, and ASGI middleware runs only once a
request's headers are parsed (uvicorn issue 157; the Slowloris attack). :class:`DeadlineH11Protocol`
adds one: when a connection opens, and whenever a new request starts on it, it gets
``header_timeout_s`` to deliver its request line and headers; past that it is answered 408 and
closed. The body has its own deadline in the app (``body_timeout_s``), where the error can be JSON.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import ServerLimits

__all__ = ["DeadlineH11Protocol", "server_config"]


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline for each request's headers (see the module docstring)."""

    header_timeout_s: float = 10.0  # set per server by server_config
    max_header_bytes: int = 16 * 1024

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state not in (h11.IDLE,):
            return
        message = f"the request headers did not arrive within {self.header_timeout_s:g} s"
        self.transport.write(_raw_response(408, "Request Timeout", message))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a (new) request is starting: its headers get header_timeout_s
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the headers are in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """h11's own refusals (malformed request, headers over the size bound) as JSON, like every other error."""
        if len(self.conn.trailing_data[0]) >= self.max_header_bytes:  # h11's bound on an incomplete event
            status, reason, msg = 431, "Request Header Fields Too Large", f"headers over {self.max_header_bytes} bytes"
        else:
            status, reason, msg = 400, "Bad Request", "malformed HTTP request"
        self.transport.write(_raw_response(status, reason, msg))
        self.transport.close()


def server_config(
    app: Any,
    limits: ServerLimits,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
) -> uvicorn.Config:
    """A uvicorn config for ``app`` with every limit of ``limits`` that belongs to the HTTP layer."""

    settings = {"header_timeout_s": limits.header_timeout_s, "max_header_bytes": limits.max_header_bytes}
    protocol = type("EdgeferH11Protocol", (DeadlineH11Protocol,), settings)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_level=log_level,
        timeout_keep_alive=int(max(1, round(limits.keep_alive_s))),
        limit_concurrency=limits.max_connections,
        timeout_graceful_shutdown=int(max(1, round(limits.graceful_shutdown_s))),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        access_log=False,
    )


def listening_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket; IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for
    proto == IPPROTO_TCP, and without it every response waits ~40 ms (Nagle against delayed ACKs)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock
