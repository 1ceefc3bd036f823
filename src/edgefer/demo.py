"""The demo: sample photos -> faces -> expressions, with each strategy against a local cloud server.

It starts the cloud server on loopback with the same model, detects the faces in each photo
once, and classifies every face with the ``edge``, ``split`` and ``cloud`` strategies, timing each
request and counting its bytes. The server is always stopped, also on error.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .edge import FIXED_PLANS, EdgeRunner
from .faces import FaceDetector
from .loading import load_model
from .photos import read_photo
from .pipeline import FacePipeline, FaceResult
from .serving import BackgroundServer, DataPlane, create_app, served_models

__all__ = ["DemoResult", "run_demo"]


@dataclass
class DemoResult:
    photos: dict[Path, np.ndarray] = field(default_factory=dict)  # RGB images
    faces: dict[str, dict[Path, list[FaceResult]]] = field(default_factory=dict)  # strategy -> photo -> faces

    def summary(self) -> list[dict]:
        """One row per strategy: faces, median/p90 latency, median edge and cloud ms, bytes per face."""
        rows = []
        for strategy, per_photo in self.faces.items():
            b = [r.breakdown for results in per_photo.values() for r in results]
            if not b:
                continue
            total = [x.total_ms for x in b]
            rows.append(
                {
                    "strategy": strategy,
                    "faces": len(b),
                    "median_ms": statistics.median(total),
                    "p90_ms": float(np.percentile(total, 90)),
                    "edge_ms": statistics.median(x.edge_ms + x.tail_ms for x in b),
                    "cloud_ms": statistics.median(x.cloud_ms for x in b),
                    "bytes_up": statistics.median(x.bytes_up for x in b),
                    "bytes_down": statistics.median(x.bytes_down for x in b),
                    "fallbacks": sum(x.fallback for x in b),
                }
            )
        return rows


def run_demo(photos: list[Path], detector: FaceDetector, checkpoint: str = "default", repeats: int = 5) -> DemoResult:
    """Classify every face of ``photos`` with each strategy, ``repeats`` times (the latency sample)."""
    model = load_model(checkpoint)
    plane = DataPlane(served_models(model), max_delay_ms=0)
    result = DemoResult()
    found = {}
    for path in photos:
        result.photos[path] = rgb = read_photo(path)
        found[path] = detector(rgb)
    with BackgroundServer(create_app(plane)) as server:
        for strategy in FIXED_PLANS:
            url = server.url if strategy != "edge" else None
            with EdgeRunner(model, strategy=strategy, cloud_url=url) as runner:
                pipeline = FacePipeline(runner, detector=detector)
                first = next((p for p in photos if found[p]), None)
                if first is not None:  # warm-up: connection, caches, lazily built buffers
                    pipeline(result.photos[first], found[first])
                per_photo: dict[Path, list[FaceResult]] = {}
                for _ in range(repeats):
                    for path in photos:
                        per_photo.setdefault(path, []).extend(pipeline(result.photos[path], found[path]))
                result.faces[strategy] = per_photo
    return result
