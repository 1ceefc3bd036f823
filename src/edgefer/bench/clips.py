"""A video clip with ground truth: faces that move, cross and leave the frame, with known boxes, IDs, labels.

:func:`make_clip` pastes each face (a 48x48 grayscale FER2013 face, or any face crop) enlarged to
100-150 px onto a smooth random colour background and moves it along a straight path across the
frame: faces enter and leave through the edges at different times, and pairs of them cross, so a
tracker has to keep identities through an overlap. Each frame jitters every face's size (+-4%) and
brightness a little, as a real face would, and the clip is written as MP4 (with its compression).
The ground truth (:class:`ClipTruth`) gives, per frame, every face of which more than half can be
seen (inside the frame and not behind a face drawn over it): its ID, box and label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = ["ClipTruth", "make_clip"]


@dataclass
class ClipTruth:
    size: tuple[int, int]  # width, height
    fps: float
    frames: int
    labels: dict[int, int]  # face ID -> its class index
    boxes: list[dict[int, tuple[int, int, int, int]]] = field(default_factory=list)  # per frame: ID -> x1, y1, x2, y2

    def rows(self) -> list[dict]:
        """One row per face per frame: frame, id, box, label."""
        return [
            {"frame": f, "id": i, "x1": b[0], "y1": b[1], "x2": b[2], "y2": b[3], "label": self.labels[i]}
            for f, frame in enumerate(self.boxes)
            for i, b in frame.items()
        ]


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    small = rng.normal(128, 45, (height // 40 + 1, width // 40 + 1, 3)).clip(20, 235).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def _paths(n: int, frames: int, width: int, height: int, rng: np.random.Generator) -> list[tuple]:
    """Per face: (first frame, last frame, start centre, end centre, side). Faces 0/1 cross head-on, as do
    2/3 later; each enters and leaves through the edges."""
    paths = []
    for k in range(n):
        side = int(rng.integers(100, 151))
        span = int(frames * rng.uniform(0.45, 0.65))
        first = int((k // 2) * frames * 0.3 + rng.integers(0, max(1, frames // 20)))
        first = min(first, frames - span)
        y = height * (0.35 if k % 4 < 2 else 0.6) + rng.uniform(-30, 30)
        y_end = y + rng.uniform(-60, 60)
        left, right = -side * 0.45, width + side * 0.45
        start, end = ((left, y), (right, y_end)) if k % 2 == 0 else ((right, y + 10), (left, y_end - 10))
        paths.append((first, first + span, start, end, side))
    return paths


def _visible(drawn: list[tuple[int, tuple[int, int, int, int], int]]) -> dict[int, tuple[int, int, int, int]]:
    """The faces more than half of which can be seen: in the frame and not covered by faces drawn later."""
    out = {}
    for k, (i, box, side) in enumerate(drawn):
        mask = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
        for _, (x1, y1, x2, y2), _ in drawn[k + 1 :]:  # later faces are drawn over this one
            mask[max(y1 - box[1], 0) : max(y2 - box[1], 0), max(x1 - box[0], 0) : max(x2 - box[0], 0)] = True
        if (~mask).sum() > 0.5 * side * side:
            out[i] = box
    return out


def make_clip(
    path: str | Path,
    faces: list[np.ndarray],
    labels: list[int],
    *,
    size: tuple[int, int] = (640, 480),
    frames: int = 300,
    fps: float = 25.0,
    seed: int = 0,
) -> ClipTruth:
    """Write an MP4 of the faces moving (see the module docstring) and return its ground truth."""
    if len(faces) != len(labels) or not faces:
        raise ValueError("need one label per face, and at least one face")
    width, height = size
    rng = np.random.default_rng(seed)
    background = _background(rng, width, height)
    paths = _paths(len(faces), frames, width, height, rng)
    gray = [f if f.ndim == 2 else cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in faces]
    truth = ClipTruth(size, fps, frames, {i: int(label) for i, label in enumerate(labels)})
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    if not writer.isOpened():
        raise ValueError(f"cannot write a video to {path}")
    try:
        for f in range(frames):
            frame = background.copy()
            drawn: list[tuple[int, tuple[int, int, int, int], int]] = []  # (id, visible box, side), in drawing order
            for i, (first, last, (x0, y0), (x1, y1), side) in enumerate(paths):
                if not first <= f <= last:
                    continue
                t = (f - first) / max(last - first, 1)
                cx, cy = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
                s = max(8, round(side * (1 + 0.04 * math.sin(f / 7 + i))))
                face = cv2.resize(gray[i], (s, s), interpolation=cv2.INTER_CUBIC).astype(np.float32)
                face = np.clip(face * (1 + 0.06 * math.sin(f / 11 + 2 * i)), 0, 255).astype(np.uint8)
                left, top = round(cx - s / 2), round(cy - s / 2)
                fx1, fy1, fx2, fy2 = max(left, 0), max(top, 0), min(left + s, width), min(top + s, height)
                if fx2 <= fx1 or fy2 <= fy1:
                    continue
                frame[fy1:fy2, fx1:fx2] = face[fy1 - top : fy2 - top, fx1 - left : fx2 - left, None]
                drawn.append((i, (fx1, fy1, fx2, fy2), s))
            truth.boxes.append(_visible(drawn))
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return truth
