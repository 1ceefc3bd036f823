"""Faces across the frames of a video: stable IDs, boxes predicted between detections, smoothed expressions.

:class:`FaceTracker` wraps a multi-object tracker of the ``trackers`` package (OC-SORT by default;
ByteTrack and SORT too: Kalman filters and Hungarian matching, chosen by measurement on four clips
with ground truth in docs/RESULTS.md, "Video"). On a frame with detections it matches them to
tracks and gives each face a track ID; on a frame without (``update(None)``), every track's Kalman
filter predicts where its face has moved, so boxes move between detections instead of being held.
A predicted face keeps its last detection's eyes, moved and scaled with its box, for the
alignment. Given the frame, it also uses each face's look: it re-links a face that the detector lost
for a while (behind another face, or half out of the frame, long enough for its motion model to
drift off) to its old ID when the new track looks like it, and it gives two faces that crossed
their IDs back when their tracks swapped faces.

:class:`ExpressionSmoother` smooths each track's expression probabilities over time, so that a
label does not flicker from frame to frame: an exponential moving average, a median over a window,
or an HMM forward filter with a sticky transition matrix. The raw scores stay available.
"""

from __future__ import annotations

import copy
import itertools
from collections import deque
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .faces import Face

__all__ = ["SMOOTHERS", "TRACKERS", "ExpressionSmoother", "FaceTracker", "TrackedFace", "appearance"]

TRACKERS = ("ocsort", "bytetrack", "sort")
SMOOTHERS = ("none", "ema", "median", "hmm")


@dataclass(frozen=True)
class TrackedFace:
    track_id: int
    face: Face  # the detector's box on a detection frame, else the track's predicted box
    detected: bool


def _tracker(kind: str, fps: float, lost_seconds: float):
    try:
        import trackers
    except ImportError as exc:
        raise ImportError(
            f"tracking needs the trackers package: pip install --no-deps trackers==2.6.1 ({exc})"
        ) from exc

    common = {"lost_track_buffer": max(1, round(lost_seconds * 30)), "frame_rate": fps, "minimum_consecutive_frames": 1}
    if kind == "bytetrack":
        return trackers.ByteTrackTracker(track_activation_threshold=0.3, high_conf_det_threshold=0.5, **common)
    if kind == "sort":
        return trackers.SORTTracker(track_activation_threshold=0.3, **common)
    if kind == "ocsort":
        return trackers.OCSORTTracker(**common)
    raise ValueError(f"unknown tracker {kind!r}; expected one of {TRACKERS}")


def _moved(face: Face, box: tuple[float, float, float, float]) -> Face:
    """``face`` with its box replaced by ``box`` and its eyes moved and scaled along."""
    if face.eyes is None:
        return replace(face, box=box)
    (ox1, oy1, ox2, oy2), (nx1, ny1, nx2, ny2) = face.box, box
    sx, sy = (nx2 - nx1) / max(ox2 - ox1, 1e-6), (ny2 - ny1) / max(oy2 - oy1, 1e-6)
    eyes = tuple((nx1 + (x - ox1) * sx, ny1 + (y - oy1) * sy) for x, y in face.eyes)
    return replace(face, box=box, eyes=eyes, landmarks=None)


def appearance(frame: np.ndarray, box: tuple[float, float, float, float], side: int = 16) -> np.ndarray | None:
    """A face's look: its box (clipped to the frame) in grey, shrunk to side x side, zero-mean, unit length.

    Measured on the tracking clip (docs/RESULTS.md, "Video"): the cosine similarity of two detections
    of one face, 0.2-2.4 s apart, has a median of 0.87; of two different faces, a 99th percentile of
    0.64 and a maximum of 0.73. None for a box with no pixels in the frame."""
    height, width = frame.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(round(box[2]), width), min(round(box[3]), height)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    small = cv2.resize(frame[y1:y2, x1:x2], (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
    small = (small.mean(axis=2) if small.ndim == 3 else small).ravel()  # shrunk first: grey of 256 pixels
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-6 else None


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Track IDs for detected faces, and each track's predicted box on the frames between detections.

    The tracker is updated only on frames with detections, with each frame's time, so its Kalman
    filters step over the frames in between; on those, :meth:`update` with ``faces=None`` predicts
    every track's box at that frame's time on a copy of its filter, leaving the tracker untouched.

    IDs are this class's, one per tracklet of the tracker, given at a face's first detection (the
    trackers confirm a new track only at its second, which would leave a face unreported until
    then when detecting every few frames); a tracklet keeps its ID while the tracker keeps it.

    On the frames between detections, every track found at the last detection is reported at its
    predicted box. A track the detector missed is reported (at its predicted box) only for
    ``coast_seconds`` after its last detection: measured on the clip with ground truth
    (docs/RESULTS.md), coasting finds a few more faces but reports more that are gone, and lowers
    IDF1 and MOTA, so it is off by default.

    Looks (when :meth:`update` is given the frame; ``relink_seconds=0`` turns all of this off): each
    ID keeps its face's :func:`appearance`, an exponential average over its detections whose boxes
    overlap no other, so that two faces crossing keep the looks they had before. Measured on the
    clips with ground truth (docs/RESULTS.md, "Video"), three uses of them:

    * Re-linking: a new track takes the ID of a face that was last detected within
      ``relink_seconds`` and is not on this frame, if their looks' cosine similarity is at least
      ``relink_similarity``; else it gets a new ID. The threshold sits above every similarity of two
      different faces measured on the clip; real faces change pose and expression more than the
      clip's pasted photos do, so there a lost face is re-linked less often (it then gets a new ID,
      as without re-linking).
    * Late re-linking: a face that comes back half covered, or from behind another, starts a track
      whose first look is not its own. A new ID is re-linked on its first detection that overlaps no
      other face within ``young_seconds`` of its birth, to a face lost before it was born (counted
      in ``late_relinks``).
    * Swap checks: when two faces whose boxes overlapped within ``relink_seconds`` are detected
      apart again, and each one's look matches the other's detection (both similarities at least
      ``relink_similarity``, and the two together beat the tracker's assignment by ``swap_margin``),
      their tracks swapped faces while crossing, and their IDs are swapped back (counted in
      ``swaps``). ``swap_margin=None`` turns it off.

    Args:
        kind: ``ocsort``, ``bytetrack`` or ``sort``.
        fps: the video's frame rate.
        lost_seconds: how long a track survives without a matching detection (to be matched again).
        coast_seconds: how long after its last detection a missed track is still reported (at most
            ``lost_seconds``).
        relink_seconds: how long a lost face's ID can be given back to a new track that looks like it.
        relink_similarity: the least cosine similarity of their looks for that.
        swap_margin: how much better (in summed cosine similarity) swapping two IDs must match their
            looks than keeping them, for the swap; None: never swap.
        young_seconds: how long a new ID may still be re-linked late (0: only at its first detection).
    """

    def __init__(
        self,
        kind: str = "ocsort",
        *,
        fps: float = 25.0,
        lost_seconds: float = 1.0,
        coast_seconds: float = 0.0,
        relink_seconds: float = 3.0,
        relink_similarity: float = 0.75,
        swap_margin: float | None = 0.1,
        young_seconds: float = 1.0,
    ) -> None:
        self.kind, self.fps = kind, fps
        self.coast_seconds = min(coast_seconds, lost_seconds)
        self.relink_seconds, self.relink_similarity = relink_seconds, relink_similarity
        self.swap_margin = swap_margin
        self._overlapped: dict[tuple[int, int], float] = {}  # a pair of IDs -> when their boxes last overlapped
        self.swaps = 0  # how many times two IDs were swapped back
        self.young_seconds = young_seconds
        self._born: dict[int, float] = {}  # a new ID -> when it was given, while it is young
        self.late_relinks = 0
        self._looks: dict[int, tuple[float, np.ndarray]] = {}  # ID -> (time of its last detection, its look)
        self.tracker = _tracker(kind, fps, lost_seconds)
        self._seen: dict[int, float] = {}  # ID -> the time of its last detection
        self._ids: dict[object, int] = {}  # tracklet -> its ID (the tracklet object itself is the key)
        self._last: dict[int, Face] = {}  # ID -> its last detected face
        self._next_id = 0
        self._updated_at: float | None = None  # the time of the last detection frame

    def update(self, faces: list[Face] | None, timestamp: float, frame: np.ndarray | None = None) -> list[TrackedFace]:
        """Tracked faces at ``timestamp`` (seconds): matched to ``faces``, or predicted when ``faces`` is None.

        ``frame`` (the image the faces were found in, RGB or grey) enables the uses of looks."""
        if faces is None:
            return self._predicted(timestamp)
        import supervision as sv

        boxes = np.asarray([f.box for f in faces], dtype=np.float32).reshape(-1, 4)
        detections = sv.Detections(xyxy=boxes, confidence=np.asarray([f.score for f in faces], dtype=np.float32))
        self.tracker.update(detections, timestamp=timestamp)
        self._updated_at = timestamp
        alive = set(map(id, self.tracker.tracks))
        self._ids = {t: i for t, i in self._ids.items() if id(t) in alive}
        taken, missed, new, known = set(), [], [], []
        for track in self.tracker.tracks:
            if track.time_since_update != 0:  # not matched to a detection on this frame
                missed.append(track)
                continue
            state = track.get_state_bbox()
            best = max(((_iou(state, b), k) for k, b in enumerate(boxes) if k not in taken), default=(0.0, -1))
            if best[0] < 0.5:
                continue
            taken.add(best[1])
            # a new tracklet is given an ID below, once the known ones have theirs
            (known if track in self._ids else new).append((track, best[1]))
        use_looks = frame is not None and self.relink_seconds > 0
        looks = {k: appearance(frame, faces[k].box) for k in taken} if use_looks else {}
        alone = {k for k in taken if not any(_iou(boxes[k], boxes[j]) > 0 for j in taken if j != k)}
        if use_looks and self.swap_margin is not None:
            self._swap_back(known, looks, alone, boxes, timestamp)
        if use_looks:
            self._relink_young(known, looks, alone, timestamp)
        out = [self._detected(self._ids[t], faces[k], timestamp, looks.get(k), k in alone) for t, k in known]
        for track, k in new:
            tid = self._relinked(looks.get(k), timestamp, {t.track_id for t in out})
            if tid is None:
                tid, self._next_id = self._next_id, self._next_id + 1
                self._born[tid] = timestamp
            else:  # the ID leaves the old tracklet, if the tracker still has it
                self._ids = {t: i for t, i in self._ids.items() if i != tid}
            self._ids[track] = tid
            out.append(self._detected(tid, faces[k], timestamp, looks.get(k), k in alone))
        known = set(self._ids.values())
        self._last = {i: f for i, f in self._last.items() if i in known}
        self._seen = {i: t for i, t in self._seen.items() if i in known}
        self._born = {i: t for i, t in self._born.items() if i in known and timestamp - t <= self.young_seconds}
        for track in missed:  # the tracker has stepped its filter to this frame already
            tid = self._ids.get(track)
            if self._coasting(tid, timestamp):
                box = tuple(float(v) for v in track.get_state_bbox())
                out.append(TrackedFace(tid, _moved(self._last[tid], box), detected=False))
        return out

    def _detected(self, tid: int, face: Face, timestamp: float, look: np.ndarray | None, alone: bool) -> TrackedFace:
        """Record a detection of ID ``tid``: its face, its time, its look if it overlaps no other (or is its first)."""
        self._last[tid], self._seen[tid] = face, timestamp
        old = self._looks.get(tid)
        if look is not None and (alone or old is None):
            if old is not None:  # an exponential average of its looks (this one weighs half), unit length
                look = old[1] + look
                look = look / max(float(np.linalg.norm(look)), 1e-6)
            self._looks[tid] = (timestamp, look)
        elif old is not None:  # covered: its look is kept, and so is its ID's claim for re-linking
            self._looks[tid] = (timestamp, old[1])
        return TrackedFace(tid, face, detected=True)

    def _swap_back(
        self,
        matched: list[tuple[object, int]],
        looks: dict[int, np.ndarray | None],
        alone: set[int],
        boxes: np.ndarray,
        timestamp: float,
    ) -> None:
        """Swap the IDs of two tracklets that swapped faces: see the class's notes on swap checks."""
        self._overlapped = {p: t for p, t in self._overlapped.items() if timestamp - t <= self.relink_seconds}
        for (ta, ka), (tb, kb) in itertools.combinations(matched, 2):
            a, b = sorted((self._ids[ta], self._ids[tb]))
            if _iou(boxes[ka], boxes[kb]) > 0:
                self._overlapped[a, b] = timestamp
                continue  # decided once they are apart, on looks that are not each other's
            if (a, b) not in self._overlapped or ka not in alone or kb not in alone:
                continue  # never overlapping, or one of them still overlaps a third face
            la, lb = self._looks.get(self._ids[ta]), self._looks.get(self._ids[tb])
            da, db = looks.get(ka), looks.get(kb)
            if la is None or lb is None or da is None or db is None:
                continue
            kept, crossed = (float(la[1] @ da), float(lb[1] @ db)), (float(la[1] @ db), float(lb[1] @ da))
            if min(crossed) >= self.relink_similarity and sum(crossed) - sum(kept) >= self.swap_margin:
                self._ids[ta], self._ids[tb] = self._ids[tb], self._ids[ta]
                self.swaps += 1
            del self._overlapped[a, b]  # decided

    def _relink_young(
        self,
        matched: list[tuple[object, int]],
        looks: dict[int, np.ndarray | None],
        alone: set[int],
        timestamp: float,
    ) -> None:
        """Give a young ID's tracklet the ID of a face lost before it was born, once their looks agree.

        See the class's notes on late re-linking."""
        present = {self._ids[t] for t, _ in matched}
        for track, k in matched:
            young = self._ids[track]
            look = looks.get(k)
            if young not in self._born or timestamp - self._born[young] > self.young_seconds:
                continue
            if k not in alone or look is None:
                continue
            lost = {
                i: v
                for i, v in self._looks.items()
                if i not in present and v[0] < self._born[young] and timestamp - v[0] <= self.relink_seconds
            }
            similarity, old = max(((float(v[1] @ look), i) for i, v in lost.items()), default=(-1.0, None))
            if old is not None and similarity >= self.relink_similarity:
                self._ids = {t: i for t, i in self._ids.items() if i != old}  # its old tracklet, if kept
                self._ids[track] = old
                present.add(old)
                for table in (self._looks, self._last, self._seen, self._born):
                    table.pop(young, None)
                self.late_relinks += 1

    def _relinked(self, look: np.ndarray | None, timestamp: float, present: set[int]) -> int | None:
        """The ID of a face lost within ``relink_seconds`` that looks like ``look``, if there is one."""
        self._looks = {i: v for i, v in self._looks.items() if timestamp - v[0] <= self.relink_seconds}
        if look is None:
            return None
        candidates = [(float(v[1] @ look), i) for i, v in self._looks.items() if i not in present]
        similarity, tid = max(candidates, default=(-1.0, None))
        return tid if similarity >= self.relink_similarity else None

    def _coasting(self, tid: int | None, timestamp: float) -> bool:
        """Whether a track not detected now is still reported: seen within ``coast_seconds``."""
        return tid is not None and tid in self._last and timestamp - self._seen[tid] <= self.coast_seconds + 1e-9

    def _predicted(self, timestamp: float) -> list[TrackedFace]:
        if self._updated_at is None:
            return []
        step = (timestamp - self._updated_at) * self.fps
        out = []
        for track in self.tracker.tracks:
            tid = self._ids.get(track)
            if tid is None or tid not in self._last:
                continue
            if self._seen[tid] != self._updated_at and not self._coasting(tid, timestamp):
                continue  # missed at the last detection, and no longer coasting
            estimator = copy.deepcopy(track.state_estimator)
            if step > 0:
                estimator.predict(step, self.fps)
            box = tuple(float(v) for v in estimator.state_to_bbox())
            out.append(TrackedFace(tid, _moved(self._last[tid], box), detected=False))
        return out


class ExpressionSmoother:
    """Per-track smoothing of expression probabilities (K classes).

    ``ema``: p = a * q + (1 - a) * p_prev. ``median``: the per-class median of the last ``window``
    frames, renormalised. ``hmm``: a forward filter, p ∝ q ⊙ (T p_prev) with T = (1 - s) I + s / K,
    treating the classifier's probabilities as emission likelihoods; ``s`` is the chance of changing
    expression between frames. ``none`` returns the raw probabilities.
    """

    def __init__(self, kind: str = "hmm", *, alpha: float = 0.3, window: int = 7, switch: float = 0.05) -> None:
        if kind not in SMOOTHERS:
            raise ValueError(f"unknown smoothing {kind!r}; expected one of {SMOOTHERS}")
        self.kind, self.alpha, self.window, self.switch = kind, alpha, window, switch
        self._state: dict[int, np.ndarray] = {}
        self._history: dict[int, deque] = {}

    def __call__(self, track_id: int, probs: np.ndarray) -> np.ndarray:
        q = np.asarray(probs, dtype=np.float64)
        if self.kind == "none":
            return q
        if self.kind == "median":
            history = self._history.setdefault(track_id, deque(maxlen=self.window))
            history.append(q)
            p = np.median(np.stack(history), axis=0)
            return p / p.sum()
        previous = self._state.get(track_id)
        if previous is None:
            p = q
        elif self.kind == "ema":
            p = self.alpha * q + (1 - self.alpha) * previous
        else:  # hmm
            k = len(q)
            prior = (1 - self.switch) * previous + self.switch / k
            p = q * prior
            p = p / p.sum() if p.sum() > 0 else q
        self._state[track_id] = p
        return p

    def forget(self, track_ids: set[int]) -> None:
        """Drop the state of tracks that ended."""
        for tid in list(self._state):
            if tid not in track_ids:
                self._state.pop(tid, None)
        for tid in list(self._history):
            if tid not in track_ids:
                self._history.pop(tid, None)
