"""Drawing results onto photos and video frames: a box and "label 87%" per face."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .pipeline import FaceResult

__all__ = ["COLORS", "draw_results"]

# One colour per FER2013 class (RGB); other labels get gray.
COLORS = {
    "angry": (220, 40, 40),
    "disgust": (120, 160, 40),
    "fear": (150, 60, 200),
    "happy": (250, 200, 0),
    "sad": (40, 100, 230),
    "surprise": (250, 120, 0),
    "neutral": (200, 200, 200),
    "contempt": (160, 110, 60),
}


def draw_results(rgb: np.ndarray, results: Sequence[FaceResult]) -> np.ndarray:
    """A copy of the RGB image with each face's box and top expression."""
    out = np.ascontiguousarray(rgb).copy()
    thick = max(1, round(max(out.shape[:2]) / 400))
    scale = max(0.4, max(out.shape[:2]) / 1000)
    for r in results:
        x1, y1, x2, y2 = r.box
        color = COLORS.get(r.label, (160, 160, 160))
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thick)
        text = (
            f"{r.label} {r.scores[r.label]:.0%}"
            if r.track_id is None
            else f"#{r.track_id} {r.label} {r.scores[r.label]:.0%}"
        )
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
        top = y1 - th - base - 2 if y1 - th - base - 2 >= 0 else y2
        cv2.rectangle(out, (x1, top), (x1 + tw + 4, top + th + base + 2), color, -1)
        cv2.putText(out, text, (x1 + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return out
