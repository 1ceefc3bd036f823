"""The device's connection to the cloud: one keep-alive HTTP client that speaks the v2 protocol.

:meth:`CloudClient.infer` sends one tensor to a cloud model and returns the response with its
timing (encode, upload, cloud compute as the server reports it, download, decode) and bytes each
way as sent, i.e. after compression. Every answered request feeds the link estimate.

Failures: a transport error, a timeout, a 5xx, 408 or 429 raise :class:`CloudDown` and mark the
cloud down; a 4xx raises :class:`CloudError` (the request or the configuration is wrong: a bad
token, an unknown model). While the cloud is down, requests are not sent (they fall back at once)
and a background thread probes the server's readiness every ``probe_interval`` seconds; the first
answer marks it up again. So the device returns to the cloud within about ``probe_interval`` of the
server coming back, and no request ever waits for a probe.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx

from ..wire import HEADER_LENGTH, Message, TensorData, compress, decode_message, decompress, encode_message
from .device import Device
from .estimator import LinkEstimator

__all__ = ["MAX_RESPONSE", "CloudClient", "CloudDown", "CloudError", "Reply"]

MAX_RESPONSE = 64 * 1024 * 1024


class CloudError(RuntimeError):
    """The cloud refused the request (4xx): a bug or a misconfiguration, not an outage."""


class CloudDown(Exception):
    """The cloud could not answer (unreachable, timed out, overloaded, or marked down)."""


@dataclass
class Reply:
    message: Message
    bytes_up: int
    bytes_down: int
    encode_ms: float  # serialise + compress, padded to the device's speed
    upload_ms: float  # request sent -> response headers, less the server's compute
    cloud_ms: float  # as the server reports it
    download_ms: float  # reading the response body
    decode_ms: float  # decompress + parse, padded


class CloudClient:
    """A keep-alive v2 client with compression, down-marking, background recovery probes and link estimates.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000``.
        token: bearer token, if the server wants one.
        compression: ``Content-Encoding`` of requests and ``Accept-Encoding`` of responses, or None.
        timeout: seconds for connecting and for the whole response.
        probe_interval: seconds between readiness probes while the cloud is down.
        device: pads encoding and decoding to the device's speed.
        link: the link estimate to feed (a new one by default).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        compression: str | None = "zstd",
        timeout: float = 2.0,
        probe_interval: float = 0.5,
        device: Device | None = None,
        link: LinkEstimator | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(timeout, connect=timeout))
        self.url, self.compression, self.timeout = url, compression, timeout
        self.probe_interval = probe_interval
        self.device = device or Device()
        self.link = link or LinkEstimator()
        self._down = threading.Event()
        self._closed = threading.Event()
        self._prober: threading.Thread | None = None
        self.last_error: str | None = None
        self.downs = 0  # how many times the cloud was marked down

    # -- state -----------------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        return not self._down.is_set() and not self._closed.is_set()

    def mark_down(self, reason: str) -> None:
        """Stop sending requests and probe in the background until the server answers again."""
        self.last_error = reason
        if self._down.is_set() or self._closed.is_set():
            return
        self.downs += 1
        self._down.set()
        self._prober = threading.Thread(target=self._probe_until_up, name="edgefer-cloud-probe", daemon=True)
        self._prober.start()

    def _probe_until_up(self) -> None:
        while self._down.is_set() and not self._closed.wait(self.probe_interval):
            self.probe_once()

    def probe_once(self) -> bool:
        """One recovery probe: the cloud is marked up again when it answers. Returns availability."""
        if self._down.is_set() and self.ready():
            self._down.clear()
        return self.available

    def ready(self) -> bool:
        """One readiness probe (``GET /v2/health/ready``); True when the server answers 200."""
        try:
            return self.http.get("/v2/health/ready", timeout=min(self.timeout, 1.0)).status_code == 200
        except httpx.HTTPError:
            return False

    def probe_rtt(self, tries: int = 2) -> float | None:
        """Time a tiny request and feed it to the link estimate; the quickest of ``tries`` counts
        (the first may include opening the connection). None when the cloud is down."""
        if not self.available:
            return None
        times = []
        for _ in range(tries):
            start = self.device.now()
            try:
                self.http.get("/v2/health/ready")
            except httpx.TransportError as exc:
                self.mark_down(f"{type(exc).__name__}: {exc}")
                return None
            times.append(self.device.ms_since(start))
        self.link.observe_rtt(min(times))
        return min(times)

    # -- requests --------------------------------------------------------------------------------

    def infer(self, model: str, tensor: TensorData, parameters: dict[str, Any] | None = None) -> Reply:
        """Send one tensor to ``model``; :class:`CloudDown` or :class:`CloudError` when it cannot be answered."""
        if not self.available:
            raise CloudDown(f"cloud marked down ({self.last_error})")
        device = self.device
        start = device.now()
        request = Message([tensor], parameters={"binary_data_output": True, **(parameters or {})})
        body, headers = encode_message(request, kind="inputs")
        if self.compression:
            body, headers["Content-Encoding"] = compress(body, self.compression), self.compression
        headers["Accept-Encoding"] = self.compression or "identity"
        encode_ms = device.pad(start)
        sent = device.now()
        try:
            http_request = self.http.build_request("POST", f"/v2/models/{model}/infer", content=body, headers=headers)
            response = self.http.send(http_request, stream=True)
            headers_at = device.now()
            try:
                raw = b"".join(response.iter_raw())  # as sent: the bytes on the wire, still compressed
            finally:
                response.close()
        except httpx.TransportError as exc:
            self.mark_down(f"{type(exc).__name__}: {exc}")
            raise CloudDown(self.last_error) from None
        download_ms = device.ms_since(headers_at)
        if response.status_code >= 500 or response.status_code in (408, 429):
            self.mark_down(f"HTTP {response.status_code}: {raw[:200]!r}")
            raise CloudDown(self.last_error)
        start = device.now()
        payload = decompress(raw, response.headers.get("content-encoding"), MAX_RESPONSE)
        if response.status_code >= 400:
            raise CloudError(f"the cloud refused the request (HTTP {response.status_code}): {payload[:500]!r}")
        message = decode_message(payload, response.headers.get(HEADER_LENGTH), kind="outputs")
        decode_ms = device.pad(start)
        cloud_ms = float(message.parameters.get("compute_ms", 0.0))
        upload_ms = max((headers_at - sent) * 1000 - cloud_ms, 0.0)
        self.link.observe(len(body), len(raw), upload_ms + download_ms)
        return Reply(message, len(body), len(raw), encode_ms, upload_ms, cloud_ms, download_ms, decode_ms)

    def body_size(self, tensor: TensorData, kind: str) -> int:
        """The bytes a message holding ``tensor`` takes on the wire (compressed as this client does)."""
        body, _ = encode_message(Message([tensor], parameters={"binary_data_output": True}), kind=kind)
        return len(compress(body, self.compression)) if self.compression else len(body)

    def close(self) -> None:
        self._closed.set()
        self.http.close()
        if self._prober is not None:
            self._prober.join(timeout=5)
