"""Photo -> faces -> expressions: detection, alignment, then the edge runtime (any strategy).

pipeline = FacePipeline(EdgeRunner("default"), detector="retinaface")
for face in pipeline(read_photo("group.jpg")):
    print(face.box, face.label, face.scores[face.label])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .edge import Breakdown, EdgeRunner, Prediction
from .faces import Face, FaceDetector, align_face, get_detector, to_gray

__all__ = ["FacePipeline", "FaceResult"]


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in the photo's pixels
    detection_score: float
    label: str
    scores: dict[str, float]  # smoothed over time in a video (see raw_scores)
    breakdown: Breakdown
    track_id: int | None = None  # in a video: the face's identity across frames
    raw_scores: dict[str, float] | None = None  # in a video: this frame's scores before smoothing

    def as_dict(self) -> dict[str, Any]:
        out = {
            "box": list(self.box),
            "label": self.label,
            "scores": {k: round(v, 4) for k, v in self.scores.items()},
            "detection_score": round(self.detection_score, 4),
        }
        if self.track_id is not None:
            out["track_id"] = self.track_id
        if self.breakdown.escalated:
            out["escalated"] = True  # answered by the cloud's larger model
        if self.breakdown.fallback:
            out["fallback"] = True  # the cloud was asked but could not answer: the device's answer
        return out


class FacePipeline:
    """Detect every face, align it to a FER2013-like crop and predict its expression.

    Args:
        runner: the :class:`EdgeRunner` that classifies crops (its strategy decides where).
        detector: a detector or its name (``retinaface``, ``dlib``, ``haar``).
        margin, shift, rotate: alignment options (:func:`edgefer.faces.align_face`).
    """

    def __init__(
        self,
        runner: EdgeRunner,
        *,
        detector: FaceDetector | str = "retinaface",
        margin: float = 0.0,
        shift: float = 0.0,
        rotate: bool = True,
    ) -> None:
        self.runner = runner
        self.detector = get_detector(detector) if isinstance(detector, str) else detector
        self.margin, self.shift, self.rotate = margin, shift, rotate

    def detect(self, rgb: np.ndarray) -> list[Face]:
        return self.detector(rgb)

    def crops(self, rgb: np.ndarray, faces: list[Face]) -> list[np.ndarray]:
        gray = to_gray(rgb)
        return [align_face(gray, f, margin=self.margin, shift=self.shift, rotate=self.rotate) for f in faces]

    @staticmethod
    def box(rgb: np.ndarray, face: Face) -> tuple[int, int, int, int]:
        """The face's box in whole pixels, clipped to the image."""
        height, width = rgb.shape[:2]
        x1, y1, x2, y2 = face.box
        return max(int(x1), 0), max(int(y1), 0), min(round(x2), width), min(round(y2), height)

    def result(self, rgb: np.ndarray, face: Face, prediction: Prediction) -> FaceResult:
        """A face's result from its prediction: the box clipped to the image."""
        return FaceResult(self.box(rgb, face), face.score, prediction.label, prediction.scores, prediction.breakdown)

    def __call__(self, rgb: np.ndarray, faces: list[Face] | None = None) -> list[FaceResult]:
        """Results for every face in an RGB uint8 image; pass ``faces`` to skip detection (tracking).

        The faces are classified together: one forward pass on the device (``edge``), else one
        request each."""
        faces = self.detect(rgb) if faces is None else faces
        if not faces:
            return []
        predictions = self.runner.predict_batch(self.crops(rgb, faces))
        return [self.result(rgb, face, p) for face, p in zip(faces, predictions, strict=True)]
