"""Labelled photos -> one aligned face crop each, through the deployed detector and alignment.

For scoring a model on real photos as ``edgefer predict`` sees them: each photo is read upright,
its faces are detected, the one nearest the photo's centre (the labelled person in a centred
portrait) is aligned to a 48x48 crop, and photos where no face is found are marked. The crops
depend on the detector only, not on the model, so they can be cached and scored by many models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..photos import read_photo
from .align import FER_SIZE, align_face, to_gray
from .detectors import Face, FaceDetector

__all__ = ["central_face", "largest_face", "photo_face_crops"]


def central_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face whose box centre is nearest the image centre (None for no faces)."""
    if not faces:
        return None

    def distance(face: Face) -> float:
        x1, y1, x2, y2 = face.box
        return ((x1 + x2) / 2 - width / 2) ** 2 + ((y1 + y2) / 2 - height / 2) ** 2

    return min(faces, key=distance)


def largest_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face with the largest box (None for no faces)."""
    return max(faces, key=lambda f: f.width * f.height) if faces else None


def photo_face_crops(
    paths: Sequence[str | Path],
    detector: FaceDetector,
    *,
    choose: Callable[[Sequence[Face], int, int], Face | None] = central_face,
    cache: Path | None = None,
    progress: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Crops (N, 48, 48) uint8 (zeros where no face was found) and ``found`` (N,) bool, one per photo;
    ``choose`` picks the face of a photo (:func:`central_face` or :func:`largest_face`).

    With ``cache``, the result is read from there when it was made for the same files, else written.
    """
    names = np.asarray([str(p) for p in paths])
    if cache is not None and cache.is_file():
        with np.load(cache) as saved:
            if saved["files"].shape == names.shape and (saved["files"] == names).all():
                return saved["crops"], saved["found"]
    crops = np.zeros((len(names), FER_SIZE, FER_SIZE), np.uint8)
    found = np.zeros(len(names), bool)
    for i, path in enumerate(tqdm(names, desc=progress, unit="photo", disable=progress is None or None)):
        rgb = read_photo(path)
        face = choose(detector(rgb), rgb.shape[1], rgb.shape[0])
        if face is not None:
            crops[i], found[i] = align_face(to_gray(rgb), face), True
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, files=names, crops=crops, found=found)
    return crops, found
