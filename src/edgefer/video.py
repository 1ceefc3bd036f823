"""Video: read frames, detect every K-th frame and track faces between, classify each frame's faces as
one batch, smooth each track's expression, draw, write.

Every face of every frame becomes a :class:`~edgefer.pipeline.FaceResult` with its ``track_id`` (the
same person keeps it while in view), its box (the detector's, or the tracker's prediction between
detections), its smoothed ``scores`` and ``label``, and this frame's ``raw_scores``.

Bad input: a frame that cannot be decoded in the middle of a file is skipped with a warning and
counted (``VideoStats.skipped``); a camera that stops delivering frames ends the run cleanly, as
does the end of a file; the annotated copy is always closed, so what was written stays readable.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .pipeline import FacePipeline, FaceResult
from .tracking import ExpressionSmoother, FaceTracker

__all__ = ["VideoStats", "frames_of", "run_video"]

log = logging.getLogger(__name__)
PARTS = ("read", "detect", "track", "classify", "write")


@dataclass
class VideoStats:
    frames: int = 0
    faces: int = 0
    skipped: int = 0  # frames that could not be decoded
    tracks: set[int] = field(default_factory=set)
    seconds: float = 0.0  # wall time, end to end
    parts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PARTS, 0.0))

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def ms(self, part: str) -> float:
        """Mean milliseconds per frame spent in a part."""
        return 1000 * self.parts[part] / self.frames if self.frames else 0.0


def frames_of(
    capture: cv2.VideoCapture, *, live: bool = False, max_misses: int = 25
) -> Iterator[tuple[int, np.ndarray | None]]:
    """(index, BGR frame) for each frame; (index, None) for a frame of a file that could not be decoded.

    A file ends at its last frame (or after ``max_misses`` undecodable frames in a row); a live
    source (a camera) ends at its first failed read: it has gone away."""
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    index = misses = 0
    while True:
        ok, frame = capture.read()
        if ok and frame is not None and frame.size:
            misses = 0
            yield index, frame
            index += 1
            continue
        if live:
            return
        position = int(capture.get(cv2.CAP_PROP_POS_FRAMES) or 0)
        if total <= 0 or max(position, index) >= total - 1 or misses >= max_misses:
            return
        misses += 1
        yield index, None
        index += 1


def run_video(
    capture: cv2.VideoCapture,
    pipeline: FacePipeline,
    *,
    out: Path | None = None,
    every: int = 1,
    max_frames: int | None = None,
    tracker: FaceTracker | str | None = "bytetrack",
    smooth: ExpressionSmoother | str = "hmm",
    live: bool = False,
    draw: Callable[[np.ndarray, list[FaceResult]], np.ndarray] | None = None,
    on_frame: Callable[[int, float, list[FaceResult]], None] | None = None,
) -> VideoStats:
    """Run the pipeline over an opened capture; write an annotated copy to ``out`` if given.

    ``tracker`` (``bytetrack``, ``sort``, ``ocsort``, a :class:`FaceTracker`, or None to hold the
    last detections' boxes without identities) and ``smooth`` (``hmm``, ``ema``, ``median``,
    ``none``) are described in :mod:`edgefer.tracking`."""
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    if isinstance(tracker, str):
        tracker = FaceTracker(tracker, fps=fps, lost_seconds=max(1.0, 2 * every / fps))
    smoother = ExpressionSmoother(smooth) if isinstance(smooth, str) else smooth
    classes = pipeline.runner.classes
    writer = None
    stats = VideoStats()
    held = []
    began = time.perf_counter()
    clock = time.perf_counter
    frames = frames_of(capture, live=live)
    try:
        while max_frames is None or stats.frames + stats.skipped < max_frames:
            t0 = clock()
            item = next(frames, None)
            if item is None:
                break
            index, bgr = item
            if bgr is None:
                stats.skipped += 1
                log.warning("frame %d could not be decoded: skipped", index)
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            t1 = clock()
            detections = pipeline.detect(rgb) if stats.frames % every == 0 else None
            t2 = clock()
            if tracker is not None:
                tracked = tracker.update(detections, index / fps)
                faces, ids = [t.face for t in tracked], [t.track_id for t in tracked]
            else:
                held = detections if detections is not None else held
                faces, ids = held, [None] * len(held)
            t3 = clock()
            results = pipeline(rgb, faces)
            for result, tid in zip(results, ids, strict=True):
                result.track_id = tid
                if tid is not None:
                    raw = np.array([result.scores[c] for c in classes])
                    smoothed = smoother(tid, raw)
                    result.raw_scores = result.scores
                    result.scores = {c: float(v) for c, v in zip(classes, smoothed, strict=True)}
                    result.label = classes[int(np.argmax(smoothed))]
                    stats.tracks.add(tid)
            if tracker is not None:
                smoother.forget(set(ids))
            t4 = clock()
            if out is not None:
                writer = writer or _open_writer(out, fps, rgb.shape)
                annotated = draw(rgb, results) if draw else rgb
                writer.write(cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))
            t5 = clock()
            for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stats.parts[part] += seconds
            if on_frame is not None:
                on_frame(index, index / fps, results)
            stats.frames += 1
            stats.faces += len(results)
    finally:
        if writer is not None:
            writer.release()
    stats.seconds = time.perf_counter() - began
    return stats


def _open_writer(out: Path, fps: float, shape: tuple[int, ...]) -> cv2.VideoWriter:
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() != ".avi" else "MJPG"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (shape[1], shape[0]))
    if not writer.isOpened():
        raise ValueError(f"cannot write a video to {out}")
    return writer
