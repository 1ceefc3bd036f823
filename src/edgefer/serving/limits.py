"""Every bound on what a client can make the server do, in one place, each an ``edgefer serve`` option.

The principle: every byte a client sends is bounded before work is spent on it. Defaults fit any
real face request with a wide margin (a face is ~2 KB as PNG, a Stage2 map ~8 KB, a batch of a few
dozen faces well under a megabyte) and keep one hostile request's memory and time small.

| bound | default | breach |
|---|---|---|
| request body, before and after Content-Encoding | 4 MiB | 413 |
| samples (faces or maps) per request | 64 | 413 |
| pixels per image (UINT8 or encoded) | 16.8 M (4096 x 4096) | 413 |
| image aspect ratio (long side / short side) | 8 | 400 |
| image's shorter side | 8 px | 400 |
| JSON nesting | 32 levels | 400 |
| headers per request | 100 | 431 |
| bytes of request line + headers | 16 KiB | 431 (h11's bound) |
| time to send the headers, from connecting or from the previous response | 10 s | 408, connection closed |
| time to send the body | 30 s | 408 |
| idle keep-alive connection | 5 s | closed |
| concurrent connections | 256 | 503 (uvicorn) |
| graceful shutdown, in-flight requests | 5 s | then cancelled |
"""

from __future__ import annotations

from dataclasses import dataclass

from ..wire.images import ImageLimits

__all__ = ["ServerLimits"]


@dataclass(frozen=True)
class ServerLimits:
    max_body_bytes: int = 4 * 1024 * 1024
    max_samples: int = 64
    max_pixels: int = 4096 * 4096
    max_aspect: float = 8.0
    min_side: int = 8
    max_headers: int = 100
    max_header_bytes: int = 16 * 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 256
    graceful_shutdown_s: float = 5.0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")

    @property
    def images(self) -> ImageLimits:
        return ImageLimits(max_pixels=self.max_pixels, max_aspect=self.max_aspect, min_side=self.min_side)
