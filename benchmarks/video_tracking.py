"""Tracking, smoothing and speed on a clip with ground truth (edgefer.bench.clips).

The clip: ``--people`` FER2013 PublicTest faces (their labels known) moving across a 640x480 frame,
entering and leaving, two pairs crossing, written as MP4 at 25 FPS. For every configuration
(tracker x detection interval x smoothing) the whole video loop runs, and against the ground truth:

* IDF1, ID switches, MOTA and recall (``motmetrics``, boxes matched at IoU >= 0.3: the truth is the
  pasted square, FER2013's frame, while RetinaFace boxes the face itself, measured 0.78x as wide;
  so a perfect detection reaches an IoU of only 0.6-0.8 with it);
* label accuracy per frame: the share of ground-truth faces, matched to a tracked face, whose label
  is right (the smoothed label, or the raw one for ``none``);
* flicker: label changes per track per second;
* FPS: end to end (decode, detect, track, align, classify, draw, encode the annotated copy).

``--runtimes`` and ``--detect-sides`` also time the classifier's runtime and the detector's input
size; ``--classify-every`` classifying only every K-th frame, ``--relink`` re-linking lost faces by
their look (``FaceTracker(relink_seconds=...)``), ``--coast`` coasting through missed detections,
``--swap`` swapping back the IDs of crossed faces (``swap_margin``), ``--young`` late re-linking
(``young_seconds``).
Training in the background can be paused while timing (``--pause PIDS``).

The people are drawn at random from PublicTest (``--people-seed``, 1) and move along paths drawn
with ``--clip-seed`` (0). With ``--detectable`` only faces that
RetinaFace finds on their own are drawn: each candidate is pasted alone, 120 px, on a grey 640x480
frame, and kept if a detection scores >= 0.5 at IoU >= 0.3 with it. That measures the tracker
rather than the detector; without it, a face RetinaFace does not see as one bounds IDF1 by itself.

    .venv/bin/python benchmarks/video_tracking.py --data ../shared/data/fer2013/fer2013.csv.gz \
        --json docs/video_tracking.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import cv2
import motmetrics as mm
import numpy as np

from edgefer.annotate import draw_results
from edgefer.bench.clips import ClipTruth, make_clip
from edgefer.bench.profiling import parse_pids, paused
from edgefer.data import load_fer2013
from edgefer.edge import EdgeRunner
from edgefer.faces import get_detector
from edgefer.loading import load_model
from edgefer.pipeline import FacePipeline
from edgefer.tracking import FaceTracker
from edgefer.video import run_video


def iou(a, b) -> float:
    x1, y1, x2, y2 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


MATCH_IOU = 0.3


def score(truth: ClipTruth, frames: list[list], classes: list[str], fps: float) -> dict:
    """IDF1, ID switches, MOTA, label accuracy and flicker of one run's per-frame results."""
    acc = mm.MOTAccumulator(auto_id=True)
    right = total = 0
    labels_by_track: dict[int, list[str]] = {}
    for gt, results in zip(truth.boxes, frames, strict=True):
        gt_ids, gt_boxes = list(gt), [gt[i] for i in gt]
        ids = [r.track_id if r.track_id is not None else -1 - k for k, r in enumerate(results)]
        boxes = [r.box for r in results]
        distances = np.array([[1 - iou(g, b) if iou(g, b) >= MATCH_IOU else np.nan for b in boxes] for g in gt_boxes])
        acc.update(gt_ids, ids, distances.reshape(len(gt_boxes), len(boxes)))
        for g_index, g in enumerate(gt_ids):  # label accuracy on the faces matched by IoU
            candidates = [(iou(gt_boxes[g_index], b), k) for k, b in enumerate(boxes)]
            best = max(candidates, default=(0, None))
            if best[0] >= MATCH_IOU:
                total += 1
                right += results[best[1]].label == classes[truth.labels[g]]
        for r in results:
            if r.track_id is not None:
                labels_by_track.setdefault(r.track_id, []).append(r.label)
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "num_switches", "mota", "recall"], name="run")
    changes = sum(sum(a != b for a, b in itertools.pairwise(seq)) for seq in labels_by_track.values())
    seconds = sum(len(seq) for seq in labels_by_track.values()) / fps
    return {
        "idf1": round(float(summary["idf1"].iloc[0]), 4),
        "id_switches": int(summary["num_switches"].iloc[0]),
        "mota": round(float(summary["mota"].iloc[0]), 4),
        "recall": round(float(summary["recall"].iloc[0]), 4),
        "label_accuracy": round(right / total, 4) if total else None,
        "flicker_per_track_s": round(changes / seconds, 4) if seconds else None,
        "gt_faces_matched": total,
    }


def draw_people(faces, count: int, *, detectable: bool, seed: int = 1) -> list[int]:
    """Indices of ``count`` faces drawn at random; with ``detectable``, only faces RetinaFace finds alone."""
    if not detectable:
        return list(np.random.default_rng(seed).choice(len(faces), count, replace=False))
    detector = get_detector("retinaface", threads=2, max_side=640, retry_scale=None)
    background = np.full((480, 640, 3), 128, np.uint8)
    kept = []
    for index in np.random.default_rng(seed).permutation(len(faces)):
        frame = background.copy()
        frame[180:300, 260:380] = cv2.resize(faces[index], (120, 120), interpolation=cv2.INTER_CUBIC)[..., None]
        if any(f.score >= 0.5 and iou(f.box, (260, 180, 380, 300)) >= 0.3 for f in detector(frame)):
            kept.append(int(index))
            if len(kept) == count:
                return kept
    raise ValueError(f"only {len(kept)} faces are detectable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 CSV: PublicTest faces become the clip's people")
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--frames", type=int, default=375, help="15 s at 25 FPS")
    parser.add_argument("--trackers", default="bytetrack,sort,ocsort")
    parser.add_argument("--every", default="1,5")
    parser.add_argument("--smooth", default="none,ema,median,hmm")
    parser.add_argument("--runtimes", default="onnxruntime,torch")
    parser.add_argument("--detect-sides", default="640,480,320", help="the first: the grid's")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--pause", default="")
    also = "also: the first tracker + hmm"
    parser.add_argument("--coast", default="", help=f"{also} with these coast_seconds (e.g. 0,0.25,1)")
    parser.add_argument("--classify-every", default="", help=f"{also}, classifying every K-th frame")
    parser.add_argument("--relink", default="", help=f"{also} with these relink_seconds (0: off)")
    parser.add_argument("--swap", default="", help=f"{also} with these swap_margin (off: None)")
    parser.add_argument("--young", default="", help=f"{also} with these young_seconds (0: off)")
    parser.add_argument("--detectable", action="store_true", help="draw only faces RetinaFace finds on their own")
    parser.add_argument("--people-seed", type=int, default=1, help="which faces are drawn")
    parser.add_argument("--clip-seed", type=int, default=0, help="their paths, sizes and the background")
    parser.add_argument("--json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    test = load_fer2013(args.data, splits=["PublicTest"])["PublicTest"]
    picks = draw_people(test.images, args.people, detectable=args.detectable, seed=args.people_seed)
    pids = parse_pids(args.pause)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, paused(pids):
        clip = Path(tmp) / "clip.mp4"
        faces, labels = list(test.images[picks]), list(test.labels[picks])
        truth = make_clip(clip, faces, labels, frames=args.frames, seed=args.clip_seed)
        models = {rt: load_model(args.checkpoint, rt, args.threads) for rt in args.runtimes.split(",")}

        def run(tracker, every, smooth, runtime, side, classify_every=None, **options) -> dict:
            runner = EdgeRunner(models[runtime])
            detector = get_detector("retinaface", threads=args.threads, max_side=side, retry_scale=None)
            pipeline = FacePipeline(runner, detector=detector)
            classes = runner.classes
            frames: list[list] = []
            capture = cv2.VideoCapture(str(clip))
            tracking = tracker
            if options:  # FaceTracker's keywords; else run_video's default
                tracking = FaceTracker(tracker, fps=truth.fps, lost_seconds=max(1.0, 2 * every / truth.fps),
                                       **options)  # fmt: skip
            stats = run_video(capture, pipeline, out=Path(tmp) / "out.mp4", every=every, tracker=tracking,
                              classify_every=classify_every or every, smooth=smooth, draw=draw_results,
                              on_frame=lambda i, t, r: frames.append(r))  # fmt: skip
            capture.release()
            row = {"tracker": tracker, "every": every, "smooth": smooth, "runtime": runtime, "detect_side": side,
                   "classify_every": classify_every or every, **options,
                   "fps": round(stats.fps, 1), **{f"ms_{k}": round(stats.ms(k), 2) for k in stats.parts}}  # fmt: skip
            row |= score(truth, frames, classes, truth.fps)
            print(json.dumps(row), flush=True)
            return row

        first_runtime, first_side = args.runtimes.split(",")[0], int(args.detect_sides.split(",")[0])
        first_tracker = args.trackers.split(",")[0]
        variants = [("coast_seconds", args.coast), ("relink_seconds", args.relink), ("swap_margin", args.swap),
                    ("young_seconds", args.young)]  # fmt: skip
        for keyword, values in variants:
            for value, every in itertools.product(filter(None, values.split(",")), map(int, args.every.split(","))):
                option = {keyword: None if value == "off" else float(value)}
                rows.append(run(first_tracker, every, "hmm", first_runtime, first_side, **option))
        for classify_every, every in itertools.product(
            map(int, filter(None, args.classify_every.split(","))), map(int, args.every.split(","))
        ):
            if classify_every != every:  # the grid below runs classify_every = every
                rows.append(run(first_tracker, every, "hmm", first_runtime, first_side, classify_every=classify_every))
        for tracker, every, smooth in itertools.product(
            args.trackers.split(","), map(int, args.every.split(",")), args.smooth.split(",")
        ):
            rows.append(run(tracker, every, smooth, first_runtime, first_side))
        for runtime, side, every in itertools.product(
            args.runtimes.split(","), map(int, args.detect_sides.split(",")), map(int, args.every.split(","))
        ):
            if (runtime, side) != (first_runtime, first_side):
                rows.append(run(first_tracker, every, "hmm", runtime, side))
    if args.json:
        meta = {"people": args.people, "picks": [int(i) for i in picks], "detectable": args.detectable,
                "people_seed": args.people_seed, "clip_seed": args.clip_seed}  # fmt: skip
        Path(args.json).write_text(json.dumps({**meta, "frames": args.frames, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
