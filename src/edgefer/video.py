"""Video: read frames, detect every K-th frame and track faces between, classify each frame's faces as
one batch, smooth each track's expression, draw, write.

With ``classify_every=K`` (and a tracker) the faces are classified only every K-th frame; on the
frames between, each tracked face keeps its track's last scores (smoothed and raw) at its new box,
and a face seen for the first time is classified at once.

Every face of every frame becomes a :class:`~edgefer.pipeline.FaceResult` with its ``track_id`` (the
same person keeps it while in view), its box (the detector's, or the tracker's prediction between
detections), its smoothed ``scores`` and ``label``, and this frame's ``raw_scores``.

Bad input: a frame that cannot be decoded in the middle of a file is skipped with a warning and
counted (``VideoStats.skipped``); a camera that stops delivering frames ends the run cleanly, as
does the end of a file; the annotated copy is always closed, so what was written stays readable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from .pipeline import FacePipeline, FaceResult
from .tracking import ExpressionSmoother, FaceTracker

__all__ = ["Ahead", "AnnotatedCopy", "VideoStats", "frames_of", "run_video"]

log = logging.getLogger(__name__)
PARTS = ("read", "detect", "track", "classify", "write")  # write: AnnotatedCopy.put (drawing and encoding, or a wait)


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
    classify_every: int = 1,
    max_frames: int | None = None,
    tracker: FaceTracker | str | None = "ocsort",
    smooth: ExpressionSmoother | str = "hmm",
    live: bool = False,
    draw: Callable[[np.ndarray, list[FaceResult]], np.ndarray] | None = None,
    on_frame: Callable[[int, float, list[FaceResult]], None] | None = None,
    write_behind: bool | None = None,
    detect_ahead: bool | None = None,
) -> VideoStats:
    """Run the pipeline over an opened capture; write an annotated copy to ``out`` if given.

    ``tracker`` (``ocsort``, ``bytetrack``, ``sort``, a :class:`FaceTracker`, or None to hold the
    last detections' boxes without identities) and ``smooth`` (``hmm``, ``ema``, ``median``,
    ``none``) are described in :mod:`edgefer.tracking`. ``classify_every``: see the module docstring
    (without a tracker every frame is classified). ``write_behind``: draw and encode the annotated
    copy on a thread of its own (:class:`AnnotatedCopy`); by default only when detecting every few
    frames, where the loop leaves a core idle. Detecting every frame keeps both cores of a 2-core
    machine busy, and there a third thread slowed the loop more than it saved (docs/RESULTS.md,
    "Video"). ``detect_ahead``: read and detect on a thread of their own, up to two frames ahead of
    tracking, classifying and writing (:class:`Ahead`). It pays when the classifier leaves the
    detector a core: ``edgefer video`` and :func:`edgefer.analyze_video` always detect ahead, with the
    classifier on one thread (2 cores, 2 faces: 33.5 against 28.9 FPS detecting every frame, 116
    against 110 every 5th). With the classifier on two threads it was even detecting every frame and
    5% slower every 5th, so by default (None) this loop detects ahead only when detecting every
    frame. Ahead, ``VideoStats`` counts the wait for each frame as detecting."""
    if every < 1 or classify_every < 1:
        raise ValueError(f"every and classify_every must be at least 1, not {every} and {classify_every}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    if isinstance(tracker, str):
        tracker = FaceTracker(tracker, fps=fps, lost_seconds=max(1.0, 2 * every / fps))
    smoother = ExpressionSmoother(smooth) if isinstance(smooth, str) else smooth
    classes = pipeline.runner.classes
    writer = None
    stats = VideoStats()
    held = []
    last: dict[int, FaceResult] = {}  # track ID -> its last classified result
    began = time.perf_counter()
    clock = time.perf_counter
    ahead = every == 1 if detect_ahead is None else detect_ahead
    frames = _detected(frames_of(capture, live=live), pipeline, every)
    if ahead:
        frames = Ahead(frames)
    try:
        while max_frames is None or stats.frames + stats.skipped < max_frames:
            t0 = clock()
            item = next(frames, None)
            if item is None:
                break
            index, rgb, detections, detect = item
            if rgb is None:
                stats.skipped += 1
                log.warning("frame %d could not be decoded: skipped", index)
                continue
            # in line, the frame's own read and detect times; ahead, the wait for it counts as detecting
            t2 = clock()
            t1 = t0 if ahead else t2 - detect
            if tracker is not None:
                tracked = tracker.update(detections, index / fps, rgb)
                faces, ids = [t.face for t in tracked], [t.track_id for t in tracked]
            else:
                held = detections if detections is not None else held
                faces, ids = held, [None] * len(held)
            t3 = clock()
            fresh = tracker is None or stats.frames % classify_every == 0
            todo = [k for k, tid in enumerate(ids) if fresh or tid not in last]
            classified = dict(zip(todo, pipeline(rgb, [faces[k] for k in todo]), strict=True))
            results = []
            for k, (face, tid) in enumerate(zip(faces, ids, strict=True)):
                if k not in classified:  # carried: the track's last scores at its new box
                    results.append(replace(last[tid], box=pipeline.box(rgb, face), detection_score=face.score))
                    continue
                result = classified[k]
                result.track_id = tid
                if tid is not None:
                    raw = np.array([result.scores[c] for c in classes])
                    smoothed = smoother(tid, raw)
                    result.raw_scores = result.scores
                    result.scores = {c: float(v) for c, v in zip(classes, smoothed, strict=True)}
                    result.label = classes[int(np.argmax(smoothed))]
                    stats.tracks.add(tid)
                    last[tid] = result
                results.append(result)
            if tracker is not None:
                smoother.forget(set(ids))
                last = {tid: r for tid, r in last.items() if tid in ids}
            t4 = clock()
            if out is not None:
                if writer is None:
                    behind = every > 1 if write_behind is None else write_behind
                    writer = AnnotatedCopy(out, fps, rgb.shape, draw=draw, threaded=behind)
                writer.put(rgb, results)
            t5 = clock()
            for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
                stats.parts[part] += seconds
            if on_frame is not None:
                on_frame(index, index / fps, results)
            stats.frames += 1
            stats.faces += len(results)
    finally:
        if isinstance(frames, Ahead):
            frames.close()
        if writer is not None:
            writer.close()
    stats.seconds = time.perf_counter() - began
    return stats


def _detected(
    frames: Iterator[tuple[int, np.ndarray | None]], pipeline: FacePipeline, every: int
) -> Iterator[tuple[int, np.ndarray | None, list | None, float]]:
    """(index, RGB frame or None, its detections or None, seconds detecting) for each frame.

    Every ``every``-th decoded frame is detected, counting from the first."""
    decoded = 0
    for index, bgr in frames:
        if bgr is None:
            yield index, None, None, 0.0
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        began = time.perf_counter()
        detections = pipeline.detect(rgb) if decoded % every == 0 else None
        decoded += 1
        yield index, rgb, detections, time.perf_counter() - began


class Ahead:
    """An iterator's items, produced on a thread of their own, at most ``depth`` ahead of the consumer.

    An error on the thread is raised by the :func:`next` that would have returned the item.
    :meth:`close` stops the thread (it finishes the item it is producing) and waits for it."""

    _END = object()

    def __init__(self, items: Iterator, depth: int = 2) -> None:
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgefer-detect-ahead", daemon=True)
        self._thread.start()

    def __iter__(self) -> Ahead:
        return self

    def __next__(self):
        item = self._queue.get()
        if item is self._END:
            self._queue.put(item)  # the end stays the end
            raise StopIteration
        if isinstance(item, _Failure):
            self._queue.put(self._END)
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _offer(self, item) -> bool:
        """Queue ``item`` unless stopped first; whether it was queued."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._offer(item):
                    return
        except Exception as exc:  # handed to the consumer
            self._offer(_Failure(exc))
            return
        self._offer(self._END)


@dataclass(frozen=True)
class _Failure:
    error: BaseException


class AnnotatedCopy:
    """The annotated copy of a video, drawn and encoded on a thread of its own (``threaded``) or in line.

    On its thread, the next frame's detection and classification overlap this frame's drawing and
    encoding (about 3 ms a 640x480 frame; OpenCV lets go of the GIL while it encodes). At most
    ``depth`` frames wait in the queue, so a slow disk holds the loop back instead of filling
    memory. :meth:`close` writes every queued frame and closes the file; an error on the thread is
    raised by the next :meth:`put` or by :meth:`close`.
    """

    def __init__(
        self,
        out: Path,
        fps: float,
        shape: tuple[int, ...],
        *,
        draw: Callable[[np.ndarray, list[FaceResult]], np.ndarray] | None = None,
        threaded: bool = True,
        depth: int = 4,
    ) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if out.suffix.lower() != ".avi" else "MJPG"))
        self._writer = cv2.VideoWriter(str(out), fourcc, fps, (shape[1], shape[0]))
        if not self._writer.isOpened():
            raise ValueError(f"cannot write a video to {out}")
        self._draw = draw
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="edgefer-annotated-copy", daemon=True)
            self._thread.start()

    def put(self, rgb: np.ndarray, results: list[FaceResult]) -> None:
        """Queue a frame (RGB) and its results (or write it now); blocks while ``depth`` frames are waiting."""
        if self._error is not None:
            raise self._error
        if self._thread is None:
            self._write(rgb, results)
        else:
            self._queue.put((rgb, results))

    def close(self) -> None:
        """Write what is queued, close the file, and raise the thread's error if it had one."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._writer.release()
        if self._error is not None:
            raise self._error

    def _write(self, rgb: np.ndarray, results: list[FaceResult]) -> None:
        annotated = self._draw(rgb, results) if self._draw else rgb
        self._writer.write(cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is not None:
                continue  # drain the queue so that put() never blocks forever
            try:
                self._write(*item)
            except Exception as exc:  # handed to the loop's thread
                self._error = exc
