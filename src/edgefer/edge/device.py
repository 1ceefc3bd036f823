"""This machine as a slower device: each edge-side step is measured and padded with a sleep.

``Device(slowdown=2.25)`` makes every step the runtime times with :meth:`Device.pad` take 2.25x as
long as it did here (the paper's phone against its laptop), so an offloading decision sees the
device it would see on a phone. The clock and the sleep are injectable, so the arithmetic can be
tested without timing anything.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Device"]


class Device:
    """``pad(start)``: the milliseconds since ``start``, after sleeping until they are ``slowdown`` x the work's."""

    def __init__(
        self,
        slowdown: float = 1.0,
        *,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if slowdown < 1.0:
            raise ValueError(f"slowdown must be >= 1 (this machine is the fastest device), got {slowdown}")
        self.slowdown, self.clock, self.sleep = slowdown, clock, sleep

    def now(self) -> float:
        return self.clock()

    def pad(self, start: float) -> float:
        elapsed = self.clock() - start
        if self.slowdown > 1.0:
            self.sleep(elapsed * (self.slowdown - 1.0))
        return (self.clock() - start) * 1000

    def ms_since(self, start: float) -> float:
        """Milliseconds since ``start``, unpadded (network waits are not the device's)."""
        return (self.clock() - start) * 1000
