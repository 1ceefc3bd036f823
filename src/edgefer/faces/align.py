"""From a detected face to a FER2013-like crop: eyes level, square, grayscale, 48x48.

The crop then goes through exactly the preprocessing the model was trained and evaluated with
(resize once, centre crop, normalise: :class:`edgefer.data.transforms.Preprocess`), so a face found
in a photo reaches the network the way a FER2013 face does.

FER2013's 48x48 frames are tight: measured on 1,200 FER2013 *Training* faces pasted into larger
canvases, RetinaFace's box is a square of 0.98-1.03x the FER2013 frame, centred within 1% of it.
So the default crop is the box's longer side (``margin=0``), centred on the box
(benchmarks/end_to_end_accuracy.py; docs/RESULTS.md, "End-to-end accuracy").
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..photos import to_gray
from .detectors import Face

__all__ = ["FER_SIZE", "align_face", "to_gray"]

FER_SIZE = 48  # FER2013's side; the model's Preprocess takes it from there as it did in training


def align_face(
    gray: np.ndarray,
    face: Face,
    size: int = FER_SIZE,
    margin: float = 0.0,
    shift: float = 0.0,
    rotate: bool = True,
) -> np.ndarray:
    """A square uint8 crop (size, size) of ``face`` in the grayscale image ``gray``.

    Args:
        margin: extra side length, as a fraction of the box's longer side (0.2: 20% larger).
        shift: moves the crop's centre down by this fraction of the box height (negative: up).
        rotate: rotate about the box centre so the eyes are level, when the detector found eyes.

    The rotated square is cut at full resolution and then shrunk with area averaging, so large
    faces do not alias. Pixels outside the image repeat the border.
    """
    x1, y1, x2, y2 = face.box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift * (y2 - y1)
    side = max(x2 - x1, y2 - y1) * (1 + margin)
    angle = 0.0
    if rotate and face.eyes is not None:
        (lx, ly), (rx, ry) = face.eyes
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    cut = max(round(side), 1)
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    matrix[:, 2] += (cut / 2 - cx, cut / 2 - cy)
    square = cv2.warpAffine(gray, matrix, (cut, cut), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if cut > size else cv2.INTER_LINEAR
    return cv2.resize(square, (size, size), interpolation=interpolation)
