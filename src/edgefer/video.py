"""Video: read frames, detect every K-th frame (holding boxes between), classify, draw, write."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .pipeline import FacePipeline, FaceResult

__all__ = ["VideoStats", "run_video"]


@dataclass
class VideoStats:
    frames: int = 0
    faces: int = 0
    seconds: float = 0.0  # wall time, end to end
    parts: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "detect": 0.0, "classify": 0.0, "write": 0.0})

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def ms(self, part: str) -> float:
        """Mean milliseconds per frame spent in a part."""
        return 1000 * self.parts[part] / self.frames if self.frames else 0.0


def run_video(
    capture: cv2.VideoCapture,
    pipeline: FacePipeline,
    *,
    out: Path | None = None,
    every: int = 1,
    max_frames: int | None = None,
    draw: Callable[[np.ndarray, list[FaceResult]], np.ndarray] | None = None,
    on_frame: Callable[[int, float, list[FaceResult]], None] | None = None,
) -> VideoStats:
    """Run the pipeline over an opened capture; write an annotated copy to ``out`` if given."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    writer = None
    stats = VideoStats()
    faces = []
    began = time.perf_counter()
    try:
        while max_frames is None or stats.frames < max_frames:
            t0 = time.perf_counter()
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t1 = time.perf_counter()
            if stats.frames % every == 0:
                faces = pipeline.detect(rgb)
            t2 = time.perf_counter()
            results = pipeline(rgb, faces)
            t3 = time.perf_counter()
            if out is not None:
                if writer is None:
                    out.parent.mkdir(parents=True, exist_ok=True)
                    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() != ".avi" else "MJPG"))
                    writer = cv2.VideoWriter(str(out), fourcc, fps, (rgb.shape[1], rgb.shape[0]))
                    if not writer.isOpened():
                        raise ValueError(f"cannot write a video to {out}")
                annotated = draw(rgb, results) if draw else rgb
                writer.write(cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
            t4 = time.perf_counter()
            for part, seconds in zip(stats.parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                stats.parts[part] += seconds
            if on_frame is not None:
                on_frame(stats.frames, stats.frames / fps, results)
            stats.frames += 1
            stats.faces += len(results)
    finally:
        if writer is not None:
            writer.release()
    stats.seconds = time.perf_counter() - began
    return stats
