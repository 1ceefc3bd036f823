"""The demo: sample photos -> faces -> expressions, with each strategy against a local cloud server.

It starts ``edgefer serve`` with the same model in a process of its own on loopback (as deployed: a
server in the demo's own process would share its interpreter and slow both), detects the faces in
each photo once, and classifies every face with each strategy, timing each request and counting its
bytes:

* ``edge``, ``split``, ``cloud``: the paper's three fixed plans;
* ``auto``: the planner's choice per request, from the measured link and compute;
* ``escalate``: the device answers, and asks the cloud's larger model about the faces it is least
  sure of (``escalate_rate`` of them, from the model's stored calibration); only with a large model.

The server is always stopped, also on error.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .edge import FIXED_PLANS, EdgeRunner
from .faces import FaceDetector
from .loading import NAMED, load_model
from .photos import read_photo
from .pipeline import FacePipeline, FaceResult
from .serving.process import ServerProcess

__all__ = ["DemoResult", "installed_large", "run_demo"]


@dataclass
class DemoResult:
    photos: dict[Path, np.ndarray] = field(default_factory=dict)  # RGB images
    faces: dict[str, dict[Path, list[FaceResult]]] = field(default_factory=dict)  # strategy -> photo -> faces

    def summary(self) -> list[dict]:
        """One row per strategy: faces, median/p90 latency, median edge and cloud ms, bytes per face, and
        how many faces fell back to the device or were escalated."""
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
                    "escalated": sum(x.escalated for x in b),
                }
            )
        return rows


def installed_large() -> str | None:
    """``default-large`` where this installation ships one, else None."""
    return "default-large" if (NAMED["default-large"] / "model.json").is_file() else None


def run_demo(
    photos: list[Path],
    detector: FaceDetector,
    checkpoint: str = "default",
    repeats: int = 5,
    *,
    large: str | None = None,
    escalate_rate: float = 0.2,
) -> DemoResult:
    """Classify every face of ``photos`` with each strategy, ``repeats`` times (the latency sample);
    ``escalate`` too when ``large`` names the cloud's larger model."""
    model = load_model(checkpoint)
    result = DemoResult()
    found = {}
    for path in photos:
        result.photos[path] = rgb = read_photo(path)
        found[path] = detector(rgb)
    strategies: dict[str, dict] = {name: {} for name in (*FIXED_PLANS, "auto")}
    if large is not None:
        strategies["escalate"] = {"escalate_rate": escalate_rate}
    serve = ["--checkpoint", str(checkpoint), "--threads", "1", "--max-delay-ms", "0"]
    serve += ["--large", large] if large is not None else ["--no-large"]
    with ServerProcess(serve) as server:
        for strategy, options in strategies.items():
            url = server.url if strategy != "edge" else None
            with EdgeRunner(model, strategy=strategy, cloud_url=url, **options) as runner:
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
