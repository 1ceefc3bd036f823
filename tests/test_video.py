"""Video and batch use: tracked faces with stable IDs, predicted boxes between detections, smoothed
expressions, per-person outputs, bad input, and the one-call API."""

import itertools
import json

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import CLASSES, words
from edgefer.bench.clips import make_clip
from edgefer.cli.main import app
from edgefer.faces import Face
from edgefer.timeline import plot_timeline, summarize_tracks
from edgefer.tracking import ExpressionSmoother, FaceTracker
from edgefer.video import frames_of, run_video

runner = CliRunner()


def _face(cx, cy, side=80, score=0.95):
    half = side / 2
    return Face((cx - half, cy - half, cx + half, cy + half), score, eyes=((cx - 15, cy - 10), (cx + 15, cy - 10)))


@pytest.mark.parametrize("kind", ["bytetrack", "sort", "ocsort"])
def test_two_moving_faces_keep_their_ids_and_are_predicted_between_detections(kind):
    tracker = FaceTracker(kind, fps=25)
    ids_a, ids_b, predicted = set(), set(), []
    for frame in range(60):
        a, b = (100 + 4 * frame, 120), (500 - 4 * frame, 300)  # one goes right, the other left
        t = frame / 25
        if frame % 5 == 0:
            out = tracker.update([_face(*a), _face(*b)], t)
            assert len(out) == 2 and all(o.detected for o in out)  # an ID from the first detection on
        else:
            out = tracker.update(None, t)
            predicted += [o for o in out if not o.detected]
        for o in out:
            centre = ((o.face.box[0] + o.face.box[2]) / 2, (o.face.box[1] + o.face.box[3]) / 2)
            (ids_a if abs(centre[1] - 120) < 40 else ids_b).add(o.track_id)
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    moving = [o for o in predicted if o.track_id in ids_a]
    xs = [(o.face.box[0] + o.face.box[2]) / 2 for o in moving[-8:]]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 10  # predicted boxes move with the face, not held
    eyes = moving[-1].face.eyes
    assert eyes[0][0] < eyes[1][0]  # the eyes moved with the box


def test_a_missed_face_is_reported_at_its_predicted_box_for_coast_seconds_then_dropped():
    tracker = FaceTracker("bytetrack", fps=25, lost_seconds=1.0, coast_seconds=0.2)
    for frame in range(10):  # detected on every frame, moving right
        (first,) = tracker.update([_face(100 + 4 * frame, 120)], frame / 25)
    reported = []
    for frame in range(10, 20):  # the detector misses it from frame 10 on
        out = tracker.update([], frame / 25)
        if out:
            reported.append(frame)
            assert out[0].track_id == first.track_id and not out[0].detected
            assert out[0].face.box[0] > first.face.box[0]  # it kept moving
    assert reported == [10, 11, 12, 13, 14]  # 0.2 s after the last detection (frame 9), then gone


def _scene(patches):
    """A grey 320x240 frame with each (texture, x, y) pasted at its place; the faces found there."""
    frame = np.full((240, 320), 128, np.uint8)
    faces = []
    for texture, x, y in patches:
        frame[y : y + 60, x : x + 60] = texture
        faces.append(_face(x + 30, y + 30, side=60))
    return frame, faces


@pytest.mark.parametrize("relink_seconds", [3.0, 0.0])
def test_a_face_lost_long_enough_for_its_track_to_drift_gets_its_id_back_if_it_looks_the_same(relink_seconds):
    rng = np.random.default_rng(0)
    a, b = (cv2.resize(rng.integers(0, 255, (6, 6)).astype(np.uint8), (60, 60)) for _ in range(2))
    tracker = FaceTracker("bytetrack", fps=25, lost_seconds=1.0, relink_seconds=relink_seconds)
    for frame in range(10):  # A moves right along the top
        image, faces = _scene([(a, 10 + 5 * frame, 20)])
        (first,) = tracker.update(faces, frame / 25, image)
    for frame in range(10, 30):  # gone for 0.8 s, during which its track keeps drifting right
        assert tracker.update([], frame / 25) == []
    image, faces = _scene([(a, 20, 150), (b, 200, 150)])  # A is back, far from where it went; B is new
    back, new = sorted(tracker.update(faces, 30 / 25, image), key=lambda t: t.face.box[0])
    assert (back.track_id == first.track_id) == (relink_seconds > 0)
    assert new.track_id not in (first.track_id, back.track_id)  # B does not look like A: a new ID


@pytest.mark.parametrize("young_seconds", [1.0, 0.0])
def test_a_face_back_half_covered_gets_its_id_back_once_it_is_seen_alone(young_seconds):
    rng = np.random.default_rng(0)
    a, b = (cv2.resize(rng.integers(0, 255, (6, 6)).astype(np.uint8), (60, 60)) for _ in range(2))
    tracker = FaceTracker("ocsort", fps=25, young_seconds=young_seconds)
    for frame in range(10):  # A moves right along the top
        image, faces = _scene([(a, 10 + 5 * frame, 20)])
        (first,) = tracker.update(faces, frame / 25, image)
    for frame in range(10, 30):  # gone for 0.8 s
        tracker.update([], frame / 25)
    image, faces = _scene([(a, 20, 150), (b, 50, 150)])  # back, half covered by B: its look is not its own
    back, new = sorted(tracker.update(faces, 30 / 25, image), key=lambda t: t.face.box[0])
    assert back.track_id != first.track_id  # too unlike its old look to be re-linked at once
    for frame in range(31, 36):  # B moves away
        image, faces = _scene([(a, 20, 150), (b, 50 + 30 * (frame - 30), 150)])
        later_a, later_b = sorted(tracker.update(faces, frame / 25, image), key=lambda t: t.face.box[0])
    assert (later_a.track_id == first.track_id) == (young_seconds > 0)
    assert later_b.track_id == new.track_id
    assert tracker.late_relinks == int(young_seconds > 0)


def _crossing(tracker, turn_back: bool):
    """A and B walk towards each other along one row until B covers A, then turn back or walk on.

    The IDs found on A and B in the first frame and in the last."""
    rng = np.random.default_rng(0)
    a, b = (cv2.resize(rng.integers(0, 255, (6, 6)).astype(np.uint8), (60, 60)) for _ in range(2))
    path = [(50 + 10 * f, 530 - 10 * f) for f in range(25)]  # they meet at x = 290 at frame 24
    step = -10 if turn_back else 10
    path += [(290 + step * f, 290 - step * f) for f in range(1, 25)]
    ids = []
    for frame_index, (xa, xb) in enumerate(path):
        image = np.full((240, 640), 128, np.uint8)
        image[90:150, xa : xa + 60], image[90:150, xb : xb + 60] = a, b  # B in front
        faces = [_face(xb + 30, 120, side=60)]
        if abs(xa - xb) > 30:  # A is found unless B covers more than half of it
            faces.append(_face(xa + 30, 120, side=60))
        found = {round(t.face.box[0]): t.track_id for t in tracker.update(faces, frame_index / 25, image)}
        ids.append((found.get(xa), found.get(xb)))
    return ids[0], ids[-1]


@pytest.mark.parametrize("kind", ["bytetrack", "sort", "ocsort"])
@pytest.mark.parametrize("turn_back", [True, False])
def test_two_faces_whose_tracks_swapped_while_crossing_get_their_ids_back(kind, turn_back):
    # turning back while one covers the other makes every tracker's motion model swap their tracks
    first, last = _crossing(FaceTracker(kind, fps=25, swap_margin=None), turn_back)
    assert (last == first[::-1]) == turn_back
    tracker = FaceTracker(kind, fps=25)  # swap checks on (the default)
    first, last = _crossing(tracker, turn_back)
    assert last == first and None not in first and first[0] != first[1]
    assert tracker.swaps == int(turn_back)


def test_smoothers():
    q = np.array([0.1, 0.9])
    ema = ExpressionSmoother("ema", alpha=0.5)
    ema(1, np.array([1.0, 0.0]))
    np.testing.assert_allclose(ema(1, q), [0.55, 0.45])
    median = ExpressionSmoother("median", window=3)
    for probs in ([1.0, 0.0], [0.0, 1.0], [0.8, 0.2]):
        out = median(7, np.array(probs))
    np.testing.assert_allclose(out, [0.8, 0.2])
    hmm = ExpressionSmoother("hmm", switch=0.1)
    hmm(1, np.array([0.9, 0.1]))
    expected = np.array([0.9 * 0.9 + 0.05, 0.1 * 0.9 + 0.05]) * q
    np.testing.assert_allclose(hmm(1, q), expected / expected.sum())
    assert ExpressionSmoother("none")(1, q) is not None
    with pytest.raises(ValueError, match="smoothing"):
        ExpressionSmoother("kalman")


def test_smoothing_cuts_flicker_on_a_noisy_sequence():
    rng = np.random.default_rng(0)
    truth = 2
    raw, smooth = [], []
    smoother = ExpressionSmoother("hmm")
    for _ in range(300):
        q = rng.dirichlet(np.ones(7))
        q[truth] += 0.25
        q /= q.sum()
        raw.append(int(q.argmax()))
        smooth.append(int(smoother(0, q).argmax()))

    def flips(labels):
        return sum(a != b for a, b in itertools.pairwise(labels))

    assert flips(smooth) < flips(raw) / 4
    assert np.mean(np.array(smooth) == truth) >= np.mean(np.array(raw) == truth)


def test_the_clip_knows_which_faces_are_visible(tmp_path):
    faces = [np.full((48, 48), 60 + 40 * i, np.uint8) for i in range(4)]
    truth = make_clip(tmp_path / "clip.mp4", faces, [0, 1, 2, 3], frames=60, seed=3)
    assert len(truth.boxes) == 60 and truth.labels == {0: 0, 1: 1, 2: 2, 3: 3}
    assert sum(map(len, truth.boxes)) > 0
    for boxes in truth.boxes:
        for x1, y1, x2, y2 in boxes.values():
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 480
    capture = cv2.VideoCapture(str(tmp_path / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 60
    assert {"frame", "id", "x1", "label"} <= set(truth.rows()[0])


def _mjpeg(path, frames=10, bad=()):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(frames):
        writer.write(np.full((48, 64, 3), i * 20, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    for b in bad:
        data[starts[b] : starts[b] + 200] = b"\0" * 200  # that frame's JPEG (~220 bytes) can no longer be decoded
    path.write_bytes(bytes(data))


def test_an_undecodable_frame_is_skipped_and_counted(tmp_path):
    path = tmp_path / "bad.avi"
    _mjpeg(path, bad=(4,))
    items = list(frames_of(cv2.VideoCapture(str(path))))
    assert [i for i, f in items if f is None] == [4]
    assert len([f for _, f in items if f is not None]) == 9


class _Camera:
    """A capture that delivers a few frames and then disappears."""

    def __init__(self, frames):
        self.frames = frames

    def read(self):
        if self.frames:
            self.frames -= 1
            return True, np.full((120, 160, 3), 90, np.uint8)
        return False, None

    def get(self, prop):
        return 0.0


class _NoFaces:
    def __call__(self, rgb):
        return []


def _pipeline(tiny):
    from edgefer.edge import EdgeRunner
    from edgefer.pipeline import FacePipeline

    return FacePipeline(EdgeRunner(tiny), detector=_NoFaces())


def test_a_camera_that_disappears_ends_the_run_and_everything_is_written(tiny, tmp_path):
    out = tmp_path / "out.mp4"
    stats = run_video(_Camera(7), _pipeline(tiny), out=out, live=True, every=2)  # the copy on its own thread
    assert stats.frames == 7 and stats.skipped == 0
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 7


@pytest.mark.parametrize("write_behind", [True, False])
def test_an_error_while_drawing_the_annotated_copy_stops_the_run_and_the_file_is_closed(tiny, tmp_path, write_behind):
    def draw(rgb, results):
        if draw.calls == 3:
            raise RuntimeError("drawing failed")
        draw.calls += 1
        return rgb

    draw.calls = 0
    out = tmp_path / "out.avi"
    with pytest.raises(RuntimeError, match="drawing failed"):
        run_video(_Camera(40), _pipeline(tiny), out=out, draw=draw, live=True, write_behind=write_behind)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 3  # what was drawn is readable


def test_a_video_without_faces_gives_an_empty_summary_and_a_timeline(tmp_path):
    frames = pd.DataFrame(columns=["frame", "time", "track_id", "label", *CLASSES])
    assert summarize_tracks(frames, CLASSES).empty
    assert plot_timeline(frames, CLASSES, tmp_path / "t.png").stat().st_size > 1000


class _Scripted:
    """A detector that finds face A on every call, and face B too from its third call on, both moving right."""

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        step, self.calls = self.calls, self.calls + 1
        return [_face(40 + 2 * step, 40, side=30), *([_face(40 + 2 * step, 90, side=30)] if step >= 2 else [])]


@pytest.mark.parametrize("classify_every", [1, 4])
def test_classify_every_k_carries_each_tracks_scores_between_and_classifies_a_new_face_at_once(tiny, classify_every):
    pipeline = _pipeline(tiny)
    pipeline.detector = _Scripted()
    batches = []
    predict_batch = pipeline.runner.predict_batch
    pipeline.runner.predict_batch = lambda crops: batches.append(len(crops)) or predict_batch(crops)
    frames = []
    run_video(_Camera(9), pipeline, classify_every=classify_every, on_frame=lambda i, t, r: frames.append(r))
    assert [len(r) for r in frames] == [1, 1, 2, 2, 2, 2, 2, 2, 2]
    if classify_every == 1:
        assert batches == [1, 1, 2, 2, 2, 2, 2, 2, 2]
        return
    assert batches == [1, 1, 2, 2]  # frame 0 (A), 2 (B, new), 4 and 8 (both)
    classified = {"A": (0, 4, 8), "B": (2, 4, 8)}
    for frame, results in enumerate(frames):
        for now in results:
            who = "A" if now.box[1] < 60 else "B"
            source = max(f for f in classified[who] if f <= frame)
            (then,) = [r for r in frames[source] if r.track_id == now.track_id]
            assert now.scores == then.scores and now.label == then.label and now.raw_scores == then.raw_scores
            assert (now.box[0] > then.box[0]) == (frame > source)  # at the tracker's new box


@pytest.mark.parametrize("every", [1, 3])
def test_detecting_ahead_on_its_own_thread_gives_the_same_results(tiny, every):
    runs = {}
    for ahead in (False, True):
        pipeline = _pipeline(tiny)
        pipeline.detector = _Scripted()
        frames = []
        stats = run_video(
            _Camera(12), pipeline, every=every, detect_ahead=ahead, on_frame=lambda i, t, r, out=frames: out.append(r)
        )
        assert stats.frames == 12 and pipeline.detector.calls == len(range(0, 12, every))
        runs[ahead] = [[(r.track_id, r.box, r.label, r.scores) for r in results] for results in frames]
    assert runs[True] == runs[False]


class _Failing(_Scripted):
    def __call__(self, rgb):
        if self.calls == 4:
            raise RuntimeError("detector failed")
        return super().__call__(rgb)


def test_an_error_while_detecting_ahead_is_raised_by_the_run_and_the_copy_is_closed(tiny, tmp_path):
    pipeline = _pipeline(tiny)
    pipeline.detector = _Failing()
    out = tmp_path / "out.avi"
    with pytest.raises(RuntimeError, match="detector failed"):
        run_video(_Camera(40), pipeline, out=out, live=True, detect_ahead=True)
    assert int(cv2.VideoCapture(str(out)).get(cv2.CAP_PROP_FRAME_COUNT)) == 4  # the frames before it


def test_detecting_ahead_stops_with_the_run(tiny):
    import threading

    stats = run_video(_Camera(10_000), _pipeline(tiny), live=True, detect_ahead=True, max_frames=5)
    assert stats.frames == 5
    assert not any(t.name == "edgefer-detect-ahead" for t in threading.enumerate())
    stats = run_video(_Camera(3), _pipeline(tiny), live=True, detect_ahead=True)  # the camera goes away
    assert stats.frames == 3


def test_summary_and_timeline_per_person(tmp_path):
    rows = []
    for t in range(50):
        for track, label in ((1, "happy"), (2, "sad" if t < 40 else "neutral")):
            scores = dict.fromkeys(CLASSES, 0.0)
            scores[label] = 1.0
            rows.append({"frame": t, "time": t / 25, "track_id": track, "label": label, **scores})
    frames = pd.DataFrame(rows)
    people = summarize_tracks(frames, CLASSES).set_index("track_id")
    assert people.loc[1, "dominant"] == "happy" and people.loc[2, "dominant"] == "sad"
    assert people.loc[2, "share_sad"] == pytest.approx(0.8) and people.loc[1, "duration_s"] == pytest.approx(49 / 25)
    assert plot_timeline(frames, CLASSES, tmp_path / "people.png").stat().st_size > 5000


@pytest.fixture(scope="module")
def people_clip(tmp_path_factory):
    """Two sample photos' faces crossing in a short clip (real faces, so RetinaFace finds them)."""
    from edgefer.faces import get_detector
    from edgefer.photos import read_photo, sample_photos

    detector, faces = get_detector("retinaface"), []
    for path in sample_photos():
        rgb = read_photo(path)
        (face,) = detector(rgb)
        x1, y1, x2, y2 = (int(v) for v in face.box)
        side, cx, cy = max(x2 - x1, y2 - y1), (x1 + x2) // 2, (y1 + y2) // 2
        faces.append(rgb[max(cy - side // 2, 0) : cy + side // 2, max(cx - side // 2, 0) : cx + side // 2])
    path = tmp_path_factory.mktemp("clip") / "people.mp4"
    truth = make_clip(path, faces, [3, 6], frames=50, seed=2)
    return path, truth


@pytest.mark.slow
def test_video_command_writes_per_frame_rows_a_summary_and_a_timeline(people_clip, tmp_path):
    path, _ = people_clip
    table, lines, summary, timeline = (tmp_path / n for n in ("f.csv", "f.jsonl", "p.csv", "t.png"))
    outputs = ["--csv", str(table), "--jsonl", str(lines), "--summary", str(summary), "--timeline", str(timeline)]
    result = runner.invoke(app, ["video", str(path), "--every", "5", *outputs, "--out", str(tmp_path / "o.mp4")])
    assert result.exit_code == 0, result.output
    assert "FPS end to end" in words(result.stdout)
    rows = pd.read_csv(table)
    assert {"frame", "time", "track_id", "x1", "label", "raw_happy"} <= set(rows.columns)
    assert rows["track_id"].notna().all() and rows["frame"].is_monotonic_increasing
    record = json.loads(lines.read_text().splitlines()[0])
    assert set(record) == {"frame", "time", "track_id", "box", "label", "scores", "raw_scores"}
    people = pd.read_csv(summary)
    assert len(people) >= 1 and set(people["dominant"]) <= set(CLASSES)
    assert timeline.stat().st_size > 5000


@pytest.mark.slow
def test_video_command_detecting_ahead_or_not_finds_the_same_people(people_clip, tmp_path):
    path, _ = people_clip
    tables = {}
    for flag in ("--detect-ahead", "--no-detect-ahead"):
        table = tmp_path / f"{flag}.csv"
        result = runner.invoke(
            app, ["video", str(path), "--every", "1", "--max-frames", "12", flag, "--csv", str(table)]
        )
        assert result.exit_code == 0, result.output
        tables[flag] = pd.read_csv(table)
    ahead, inline = tables.values()
    assert len(ahead) > 0 and ahead[["frame", "track_id", "label"]].equals(inline[["frame", "track_id", "label"]])
    assert np.allclose(ahead[["x1", "y1", "x2", "y2"]], inline[["x1", "y1", "x2", "y2"]])


def test_analyze_photos_and_video_return_dataframes(people_clip, tmp_path):
    import edgefer
    from edgefer.photos import sample_photos

    (tmp_path / "broken.jpg").write_bytes(b"not a photo")
    photo = cv2.cvtColor(cv2.imread(str(sample_photos()[0])), cv2.COLOR_BGR2RGB)
    table = edgefer.analyze([*sample_photos(), tmp_path / "broken.jpg", photo])
    assert list(table.columns[:8]) == ["file", "face", "x1", "y1", "x2", "y2", "detection_score", "label"]
    assert set(CLASSES) <= set(table.columns) and "error" in table.columns
    assert table["error"].notna().sum() == 1 and (table["label"].dropna().isin(CLASSES)).all()
    assert len(table.dropna(subset=["label"])) == 3  # one face in each readable photo and in the array
    frames = edgefer.analyze_video(people_clip[0], every=5)
    assert {"frame", "time", "track_id", "label", *CLASSES} <= set(frames.columns) and len(frames) > 20
    with pytest.raises(FileNotFoundError):
        edgefer.analyze_video(tmp_path / "missing.mp4")
