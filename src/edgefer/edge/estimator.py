"""A live estimate of the link to the cloud: round-trip time and uplink/downlink throughput.

Fed by the edge's own requests (bytes each way and the time the network took: the request's time
less the cloud's reported compute) and by probes: a tiny health request measures the application
round trip (network RTT plus HTTP handling). Each estimate is an exponentially weighted moving
average, so it follows a changed link within a few requests (alpha 0.5: a new rate is 94% in after
4 samples).

Requests under 4 KB in all count only when they were slower than the estimate: their time is
mostly the round trip, and a shaper's burst allowance (tbf: a few KB) may let them through at line
rate, so a fast one says little, but a slow one means the link slowed down. Attribution: a request
whose response is small (< ``SMALL`` bytes, i.e. logits) is an uplink sample, one whose upload is
small a downlink sample. When both are large, the observed time is split in proportion to the
current estimates (which keeps their ratio and fits the total). A direction that has never been
sampled borrows the other's estimate.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["LinkEstimate", "LinkEstimator"]

SMALL = 1500  # bytes: fits in the first segment with the headers
MIN_SAMPLE = 4000  # bytes both ways: smaller requests say more about the round trip and bursts than the rate


@dataclass(frozen=True)
class LinkEstimate:
    rtt_ms: float
    up_kbps: float  # KB/s (1 KB = 1000 bytes)
    down_kbps: float

    def transfer_ms(self, bytes_up: int, bytes_down: int) -> float:
        """Predicted network time of one request: a round trip plus both transfers."""
        return self.rtt_ms + bytes_up / self.up_kbps + bytes_down / self.down_kbps


class LinkEstimator:
    def __init__(self, *, alpha: float = 0.5, rtt_ms: float | None = None, kbps: float | None = None) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._rtt = rtt_ms
        self._up = self._down = kbps
        self.samples = 0
        self._lock = threading.Lock()

    def _ewma(self, old: float | None, new: float) -> float:
        return new if old is None else (1 - self.alpha) * old + self.alpha * new

    def observe_rtt(self, ms: float) -> None:
        with self._lock:
            self._rtt = self._ewma(self._rtt, max(ms, 0.0))

    def observe(self, bytes_up: int, bytes_down: int, network_ms: float) -> None:
        """One request: bytes each way and the time the network took (total less cloud compute)."""
        with self._lock:
            transfer = network_ms - (self._rtt or 0.0)
            if transfer <= 0.05:  # within the round trip: nothing to say about the rate
                return
            small = bytes_up + bytes_down < MIN_SAMPLE
            if bytes_down < SMALL or bytes_up < SMALL:
                size, up = (bytes_up, True) if bytes_down < SMALL else (bytes_down, False)
                rate = size / transfer  # bytes per ms = KB/s
                old = self._up if up else self._down
                if small and (old is None or rate >= old):  # a burst, perhaps: only a slowdown is news
                    return
                self.samples += 1
                if up:
                    self._up = self._ewma(self._up, rate)
                else:
                    self._down = self._ewma(self._down, rate)
                return
            if small:
                return
            self.samples += 1
            up = self._up or self._down or (bytes_up + bytes_down) / transfer
            down = self._down or up
            predicted = bytes_up / up + bytes_down / down
            scale = predicted / transfer  # > 1: faster than thought
            self._up, self._down = self._ewma(self._up, up * scale), self._ewma(self._down, down * scale)

    @property
    def ready(self) -> bool:
        return self._rtt is not None and (self._up or self._down) is not None

    def estimate(self) -> LinkEstimate:
        with self._lock:
            if not self.ready:
                raise RuntimeError("no estimate yet: probe the link or observe a request first")
            up = self._up or self._down
            down = self._down or self._up
            return LinkEstimate(self._rtt, up, down)  # type: ignore[arg-type]
