"""FER2013 faces in synthetic photos, and back out through the deployed detector and alignment.

:func:`paste_face` enlarges a 48x48 face 2-4x and places it at a random spot of a gray canvas, whose
background is either the face's border pixels extended outwards (``replicate``) or smooth random
noise (``noise``). :func:`pipeline_crops` then finds the face again with a detector and cuts it out
with :func:`edgefer.faces.align_face`, exactly as ``edgefer predict`` does with a photo.

Two uses: benchmarks/end_to_end_accuracy.py measures on PublicTest what detection and alignment
cost against FER2013's own crops, and the ``pipeline`` training recipe adds such crops of the
*Training* faces to the training set, so that the model learns the detector's framing and the
resampling it brings (docs/RESULTS.md, "End-to-end accuracy").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from tqdm import tqdm

from .align import FER_SIZE, align_face
from .detectors import Face, FaceDetector

__all__ = [
    "BACKGROUNDS",
    "CANVAS",
    "PipelineCrops",
    "cached_pipeline_crops",
    "noise_canvas",
    "paste_face",
    "pipeline_crops",
    "pipeline_views",
]

log = logging.getLogger(__name__)

CANVAS = 320  # canvas side, pixels
BACKGROUNDS = ("replicate", "noise")


def noise_canvas(rng: np.random.Generator, size: int = CANVAS) -> np.ndarray:
    """A gray canvas of smooth random noise (no face), uint8 (size, size)."""
    noise = rng.normal(128, 60, (size // 16, size // 16)).clip(0, 255).astype(np.uint8)
    return cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC)


def paste_face(
    face: np.ndarray, rng: np.random.Generator, background: str = "replicate"
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A gray 320x320 canvas with ``face`` enlarged 2-4x (cubic) at a random spot; and its (left, top, side)."""
    if background not in BACKGROUNDS:
        raise ValueError(f"unknown background {background!r}; expected one of {BACKGROUNDS}")
    side = int(rng.integers(2 * FER_SIZE, 4 * FER_SIZE + 1))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    top, left = (int(v) for v in rng.integers(0, CANVAS - side + 1, 2))
    if background == "replicate":
        canvas = cv2.copyMakeBorder(big, top, CANVAS - side - top, left, CANVAS - side - left, cv2.BORDER_REPLICATE)
    else:
        canvas = noise_canvas(rng)
        canvas[top : top + side, left : left + side] = big
    return canvas, (left, top, side)


class PipelineCrops(NamedTuple):
    crops: np.ndarray  # (N, 48, 48) uint8: the aligned crop, zeros where no face was found
    found: list[Face | None]  # the most confident face on each canvas
    canvases: list[np.ndarray]  # (320, 320) uint8 each; empty unless asked for
    frames: list[tuple[int, int, int]]  # the face's true (left, top, side) on each canvas
    seconds: float  # spent in the detector


def pipeline_crops(
    faces: Iterable[np.ndarray],
    detector: FaceDetector,
    background: str = "replicate",
    *,
    seed: int = 0,
    rotate: bool = True,
    keep_canvases: bool = False,
    progress: str | None = None,
) -> PipelineCrops:
    """Paste each 48x48 face into its own canvas, detect, keep the most confident face, align it.

    Deterministic for a given ``seed``. ``progress`` names a progress bar (none when ``None``).
    """
    rng = np.random.default_rng(seed)
    faces = list(faces)
    crops = np.zeros((len(faces), FER_SIZE, FER_SIZE), np.uint8)
    found: list[Face | None] = []
    canvases, frames, seconds = [], [], 0.0
    for i, face in enumerate(tqdm(faces, desc=progress, unit="face", leave=False, disable=progress is None)):
        canvas, frame = paste_face(face, rng, background)
        start = time.perf_counter()
        detected = detector(np.repeat(canvas[..., None], 3, axis=2))
        seconds += time.perf_counter() - start
        best = max(detected, key=lambda f: f.score) if detected else None
        if best is not None:
            crops[i] = align_face(canvas, best, rotate=rotate)
        found.append(best)
        frames.append(frame)
        if keep_canvases:
            canvases.append(canvas)
    return PipelineCrops(crops, found, canvases, frames, seconds)


def pipeline_views(faces: np.ndarray, cache: Path, threads: int | None = None) -> list[np.ndarray]:
    """Each 48x48 face as RetinaFace and the alignment cut it from a canvas, once per background.

    The training data of the ``pipeline`` recipe. Faces the detector misses keep their original
    crop. Cached in ``cache`` (it takes ~5 min per background for FER2013's 28,709 training faces
    at 2 threads); a cache made for other faces is not used.
    """
    from . import get_detector

    if cache.is_file():
        with np.load(cache) as saved:
            if all(b in saved and len(saved[b]) == len(faces) for b in BACKGROUNDS):
                return [saved[b] for b in BACKGROUNDS]
    detector = get_detector("retinaface", threads=threads)
    views = {}
    for seed, background in enumerate(BACKGROUNDS, start=11):
        result = pipeline_crops(faces, detector, background, seed=seed, progress=f"pipeline views ({background})")
        missed = np.array([f is None for f in result.found])
        views[background] = np.where(missed[:, None, None], faces, result.crops)
        log.info("pipeline views (%s): the detector missed %d of %d faces", background, missed.sum(), len(faces))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **views)
    return [views[b] for b in BACKGROUNDS]


def cached_pipeline_crops(
    faces: np.ndarray, cache: Path, background: str = "replicate", *, seed: int = 2, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``faces`` as RetinaFace and the alignment cut them from ``background`` canvases (zeros where
    no face was found) and which were found, kept in ``cache``: the detections do not depend on the
    model that classifies them, so every model of a benchmark is scored on the same crops."""
    if cache.is_file():
        with np.load(cache) as saved:
            if (
                len(saved["crops"]) == len(faces)
                and str(saved["background"]) == background
                and int(saved["seed"]) == seed
            ):
                return saved["crops"], saved["found"]
    from . import get_detector

    result = pipeline_crops(
        faces, get_detector("retinaface", threads=threads), background, seed=seed, progress=f"pipeline ({background})"
    )
    found = np.array([f is not None for f in result.found])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, crops=result.crops, found=found, background=background, seed=seed)
    return result.crops, found
