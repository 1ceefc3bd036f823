"""One call from photos or a video to a table: ``edgefer.analyze`` and ``edgefer.analyze_video``.

    import edgefer
    faces = edgefer.analyze(["group.jpg", "photos/"])       # a pandas DataFrame, one row per face
    frames = edgefer.analyze_video("clip.mp4", every=5)     # one row per face per frame, with track_id

Columns: ``file`` (or the array's index), ``face``, the box ``x1 y1 x2 y2``, ``detection_score``,
``label`` and one score column per class; a video adds ``frame``, ``time`` and ``track_id`` (and the
scores are smoothed per track; ``raw_<class>`` columns hold each frame's own). Photos are read and
detected one by one, and the faces of ``batch_size`` photos are classified together (on the device,
one forward pass). A photo that cannot be read gets a row with its ``error`` and no box.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .edge import EdgeRunner
from .faces import FaceDetector, get_detector
from .photos import PhotoError, display_name, iter_photos, read_photo
from .pipeline import FacePipeline, FaceResult

__all__ = ["PhotoResults", "analyze", "analyze_video", "iter_photo_results"]


def _pipeline(
    checkpoint: str,
    detector: str | FaceDetector,
    strategy: str,
    cloud: str | None,
    runtime: str,
    threads: int | None,
    classifier_threads: int | None = None,
) -> FacePipeline:
    runner = EdgeRunner(
        checkpoint, strategy=strategy, cloud_url=cloud, runtime=runtime, threads=classifier_threads or threads
    )
    if isinstance(detector, str):
        detector = get_detector(detector, **({"threads": threads} if detector == "retinaface" and threads else {}))
    return FacePipeline(runner, detector=detector)


@dataclass
class PhotoResults:
    """One photo's outcome: its faces, or the error that kept it from being read."""

    source: Path | int  # the file, or the array's index among the inputs
    name: str  # printable, whatever bytes a file name holds
    rgb: np.ndarray | None = None
    faces: list[FaceResult] = field(default_factory=list)
    error: PhotoError | None = None


def iter_photo_results(
    sources: Iterable[str | Path | np.ndarray], pipeline: FacePipeline, *, batch_size: int = 32
) -> Iterator[PhotoResults]:
    """Each photo's results, in order (folders are searched recursively); faces of up to ``batch_size``
    photos are classified together, one forward pass on the device."""
    pending: list[tuple[PhotoResults, list, list[np.ndarray]]] = []

    def flush() -> Iterator[PhotoResults]:
        crops = [c for _, _, cs in pending for c in cs]
        predictions = iter(pipeline.runner.predict_batch(crops)) if crops else iter(())
        for photo, faces, _ in pending:
            photo.faces = [pipeline.result(photo.rgb, face, next(predictions)) for face in faces]
            yield photo
        pending.clear()

    for index, source in enumerate(_sources(sources)):
        if isinstance(source, np.ndarray):
            photo = PhotoResults(index, str(index), _as_rgb(source))
        else:
            photo = PhotoResults(Path(source), display_name(source))
            try:
                photo.rgb = read_photo(source)
            except PhotoError as exc:
                yield from flush()
                photo.error = exc
                yield photo
                continue
        faces = pipeline.detect(photo.rgb)
        pending.append((photo, faces, pipeline.crops(photo.rgb, faces)))
        if sum(len(p[1]) for p in pending) >= batch_size:
            yield from flush()
    yield from flush()


def _sources(sources: Iterable[str | Path | np.ndarray]) -> Iterator[str | Path | np.ndarray]:
    if isinstance(sources, str | Path | np.ndarray):
        sources = [sources]
    for source in sources:
        if isinstance(source, np.ndarray):
            yield source
        else:
            yield from iter_photos([source])


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"expected an RGB (H, W, 3) or grayscale (H, W) image, got shape {image.shape}")


def _row(result: FaceResult, classes: list[str], **extra: Any) -> dict[str, Any]:
    x1, y1, x2, y2 = result.box
    row = {**extra, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "detection_score": result.detection_score}
    row["label"] = result.label
    row.update({c: result.scores[c] for c in classes})
    if result.raw_scores is not None:
        row.update({f"raw_{c}": result.raw_scores[c] for c in classes})
    return row


def analyze(
    photos: str | Path | np.ndarray | Iterable[str | Path | np.ndarray],
    *,
    detector: str | FaceDetector = "retinaface",
    strategy: str = "edge",
    cloud: str | None = None,
    checkpoint: str = "default",
    runtime: str = "auto",
    threads: int | None = None,
    batch_size: int = 32,
) -> pd.DataFrame:
    """Every face in photos (files, folders, or RGB/grayscale uint8 arrays): one row per face."""
    pipeline = _pipeline(checkpoint, detector, strategy, cloud, runtime, threads)
    classes = pipeline.runner.classes
    rows = []
    try:
        for photo in iter_photo_results(photos, pipeline, batch_size=batch_size):
            if photo.error is not None:
                rows.append({"file": photo.name, "error": photo.error.reason})
                continue
            rows += [_row(r, classes, file=photo.name, face=i) for i, r in enumerate(photo.faces)]
    finally:
        pipeline.runner.close()
    columns = ["file", "face", "x1", "y1", "x2", "y2", "detection_score", "label", *classes]
    frame = pd.DataFrame(rows)
    return frame.reindex(columns=[*columns, *(["error"] if "error" in frame else [])])


def analyze_video(
    path: str | Path,
    *,
    every: int = 5,
    classify_every: int | None = None,
    tracker: str = "ocsort",
    smooth: str = "hmm",
    detector: str | FaceDetector = "retinaface",
    strategy: str = "edge",
    cloud: str | None = None,
    checkpoint: str = "default",
    runtime: str = "auto",
    threads: int | None = None,
    max_frames: int | None = None,
    detect_ahead: bool = True,
) -> pd.DataFrame:
    """Every face of every frame of a video file: one row per face per frame, with its track.

    Faces are detected every ``every`` frames and classified every ``classify_every`` (default: as
    ``every``); between, the tracker moves each face's box and it keeps its last scores.
    ``detect_ahead``: read and detect on a thread of their own, with the classifier on one thread,
    as ``edgefer video --detect-ahead`` (the default of both; docs/RESULTS.md, "Video")."""
    import cv2

    from .video import run_video

    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise ValueError(f"{path}: not a video OpenCV can read")
    pipeline = _pipeline(checkpoint, detector, strategy, cloud, runtime, threads, 1 if detect_ahead else None)
    classes = pipeline.runner.classes
    rows: list[dict] = []

    def on_frame(index: int, seconds: float, results: list[FaceResult]) -> None:
        rows.extend(
            _row(r, classes, frame=index, time=round(seconds, 4), track_id=r.track_id, face=i)
            for i, r in enumerate(results)
        )

    try:
        run_video(capture, pipeline, every=every, classify_every=classify_every or every, tracker=tracker,
                  smooth=smooth, max_frames=max_frames, on_frame=on_frame, detect_ahead=detect_ahead)  # fmt: skip
    finally:
        capture.release()
        pipeline.runner.close()
    columns = ["frame", "time", "track_id", "face", "x1", "y1", "x2", "y2", "detection_score", "label", *classes]
    columns += [f"raw_{c}" for c in classes]
    frame = pd.DataFrame(rows).reindex(columns=columns)
    return frame.astype({"track_id": "Int64"}) if len(frame) else frame
