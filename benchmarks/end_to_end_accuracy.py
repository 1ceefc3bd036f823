"""Do detection and alignment cost accuracy? FER2013 faces pasted into larger canvases vs the crops.

Each 48x48 face is enlarged 2-4x (random) and placed at a random spot of a 320x320 canvas, then
found by the detector, aligned (`edgefer.faces.align_face`, the pipeline's defaults) and classified.
The baseline feeds the original crop straight to the model. Both use the same model and
preprocessing, without test-time augmentation (as `EdgeRunner` does). A face the detector misses
counts as wrong; where it finds several, the most confident is used.

Two canvases: ``noise`` (smooth random gray around the face) and ``replicate`` (the face's border
pixels extended outwards). FER2013 frames are tight, so a detector's box often reaches past them;
with ``noise`` the crop then shows noise where a real photo would show hair and chin, which
``replicate`` approximates better. Both are reported.

Each row splits its loss: ``missed`` is the part from faces the detector did not find (those the
direct crops got right), the rest comes from framing. ``--threshold`` takes several RetinaFace
score thresholds and ``--retry`` several scales for its second look where it found nothing (0:
none); each combination detects on the same canvases. ``--checkpoint`` takes several models (the
detections are shared). The ``oracle frame`` rows cut the true FER2013 frame from each canvas
instead of the detector's box: the loss that enlarging and shrinking the face alone cause. Each
loss comes with the half-width of its 95% confidence interval (paired over the images): with 3589
faces it is about +-1.2 pt for the detector's rows and +-0.7 pt for the oracle's.
``--ferplus`` also scores without the images that FER+'s annotators mostly called not a face
(blank frames, icons), where finding no face is right.

`--frame N` also measures, on N *Training* faces, how the detector's box relates to the FER2013
frame (its side and centre offset), which is how the alignment's defaults were chosen.

    .venv/bin/python benchmarks/end_to_end_accuracy.py --data ../shared/data/fer2013/fer2013.csv.gz --frame 1200 \
        --checkpoint runs/shufflenet_asp_sfp_cpu/last runs/reframe/last default --threshold 0.2 --retry 1.6 0 \
        --ferplus ../shared/data/fer2013/fer2013new.csv --json docs/end_to_end.json
"""

from __future__ import annotations

import argparse
import inspect
import json

import numpy as np
import torch

from edgefer.data import FERPLUS_VOTE_COLUMNS, FaceData, ferplus_votes, load_fer2013, resize_once
from edgefer.faces import Face, align_face, get_detector
from edgefer.faces.detectors import RetinaFaceDetector
from edgefer.faces.synthetic import pipeline_crops
from edgefer.loading import load_model
from edgefer.train import predict_logits


def detect_all(data: FaceData, detector, background: str, seed: int):
    """Canvases, the most confident face in each (or None), true frames, and mean detection ms."""
    r = pipeline_crops(
        data.images, detector, background, seed=seed, keep_canvases=True, progress=f"detect ({background})"
    )
    return r.canvases, r.found, r.frames, 1000 * r.seconds / len(data)


def classify(net, pre, crops: np.ndarray) -> np.ndarray:
    return predict_logits(net, resize_once(crops, pre.resize), pre).argmax(1).numpy()


def end_to_end(net, pre, grays, found: list[Face | None], rotate: bool) -> np.ndarray:
    """Predicted class per canvas, -1 where nothing was detected."""
    crops = np.zeros((len(grays), 48, 48), np.uint8)
    for i, (gray, face) in enumerate(zip(grays, found, strict=True)):
        if face is not None:
            crops[i] = align_face(gray, face, rotate=rotate)
    predicted = classify(net, pre, crops)
    predicted[[f is None for f in found]] = -1
    return predicted


def ci95_pt(direct_right: np.ndarray, e2e_right: np.ndarray) -> float:
    """Half-width of the 95% confidence interval of the loss, in points: a paired normal interval
    over the images (each contributes +1, 0 or -1), so only the faces that change verdict count."""
    diff = direct_right.astype(float) - e2e_right.astype(float)
    return 100 * 1.96 * float(diff.std(ddof=1)) / np.sqrt(len(diff))


def frame_stats(found, frames) -> dict[str, list[float]]:
    """Box side / frame side, and centre offsets / frame side: median, p10, p90."""
    rows = []
    for face, (left, top, side) in zip(found, frames, strict=True):
        if face is not None:
            x1, y1, x2, y2 = face.box
            rows.append(
                (
                    max(x2 - x1, y2 - y1) / side,
                    ((x1 + x2) / 2 - left - side / 2) / side,
                    ((y1 + y2) / 2 - top - side / 2) / side,
                )
            )
    r = np.array(rows)
    return {
        k: [round(float(np.percentile(r[:, i], q)), 3) for q in (50, 10, 90)]
        for i, k in enumerate(("side", "dx", "dy"))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", nargs="+", default=["default"], help="one or more; detection is shared")
    parser.add_argument("--detector", default="retinaface")
    parser.add_argument(
        "--threshold", type=float, nargs="+", help="RetinaFace score thresholds (default: the detector's own)"
    )
    parser.add_argument(
        "--retry", type=float, nargs="+", help="RetinaFace retry scales, 0 for none (default: the detector's own)"
    )
    parser.add_argument("--ferplus", help="fer2013new.csv: also score without the images FER+ calls not a face")
    parser.add_argument("--canvas", nargs="+", default=["replicate", "noise"], choices=["replicate", "noise"])
    parser.add_argument("--frame", type=int, default=0, help="Training faces for the box-vs-frame statistics")
    parser.add_argument("--limit", type=int, help="only the first N PublicTest faces")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if (args.threshold or args.retry) and args.detector != "retinaface":
        parser.error("--threshold and --retry are for the retinaface detector")
    settings = [{}]  # detector options: each threshold x retry scale
    if args.threshold or args.retry:
        defaults = inspect.signature(RetinaFaceDetector).parameters
        settings = [
            {"threshold": t, "retry_scale": r or None}
            for t in sorted(args.threshold or [defaults["threshold"].default], reverse=True)
            for r in args.retry or [defaults["retry_scale"].default]
        ]
    detectors = [get_detector(args.detector, threads=args.threads, **options) for options in settings]
    splits = load_fer2013(args.data, splits=["PublicTest", *(["Training"] if args.frame else [])])
    results: dict = {"detector": args.detector}
    if args.frame:
        train = splits["Training"].subset(slice(0, args.frame))
        _, found, frames, _ = detect_all(train, detectors[0], "replicate", seed=1)
        results["frame_on_training"] = {"n": len(train), **frame_stats(found, frames)}

    test = splits["PublicTest"]
    if args.limit:
        test = test.subset(slice(0, args.limit))
    face = np.ones(len(test), bool)
    if args.ferplus:
        votes = ferplus_votes(args.ferplus, {"PublicTest": len(splits["PublicTest"])})["PublicTest"][: len(test)]
        face = votes.argmax(1) != FERPLUS_VOTE_COLUMNS.index("NF")
        results["not_a_face"] = int((~face).sum())
    results["n"] = len(test)
    # the same canvases (same seed) for every detector setting
    detected = {
        (background, i): detect_all(test, detector, background, seed=2)
        for background in args.canvas
        for i, detector in enumerate(detectors)
    }

    rows, oracles = [], []
    for checkpoint in args.checkpoint:
        loaded = load_model(checkpoint, "torch")
        net, pre = loaded.net, loaded.preprocess
        direct = classify(net, pre, test.images)
        direct_right = direct == test.labels
        direct_acc, direct_face = float(direct_right.mean()), float(direct_right[face].mean())
        for (background, i), (grays, found, frames, ms) in detected.items():
            if i == 0:  # the true FER2013 frame cut from the canvas: what resampling alone costs
                oracle = [Face((left, top, left + side, top + side), 1.0) for left, top, side in frames]
                oracle_right = end_to_end(net, pre, grays, oracle, rotate=False) == test.labels
                oracles.append(
                    {
                        "checkpoint": checkpoint,
                        "background": background,
                        "accuracy": round(float(oracle_right.mean()), 4),
                        "loss_pt": round(100 * (direct_acc - float(oracle_right.mean())), 2),
                        "ci95_pt": round(ci95_pt(direct_right, oracle_right), 2),
                    }
                )
            missed = np.array([f is None for f in found])
            # the part of the loss from faces not found: those the direct crops got right
            miss_pt = 100 * float((direct_right & missed).mean())
            for rotate in (True, False):
                right = end_to_end(net, pre, grays, found, rotate) == test.labels
                rows.append(
                    {
                        "checkpoint": checkpoint,
                        "background": background,
                        "threshold": getattr(detectors[i], "threshold", None),
                        "retry_scale": detectors[i].retry_scale,
                        "rotate": rotate,
                        "direct_accuracy": round(direct_acc, 4),
                        "detected": round(1 - float(missed.mean()), 4),
                        "accuracy": round(float(right.mean()), 4),
                        "loss_pt": round(100 * (direct_acc - float(right.mean())), 2),
                        "ci95_pt": round(ci95_pt(direct_right, right), 2),
                        "missed_pt": round(miss_pt, 2),
                        "faces_loss_pt": round(100 * (direct_face - float(right[face].mean())), 2),
                        "detect_ms": round(ms, 1),
                    }
                )
    results["end_to_end"], results["oracle_frame"] = rows, oracles
    extra = "loss pt, FER+ faces" if args.ferplus else ""
    print(f"{len(test)} PublicTest faces" + (f", {results['not_a_face']} not a face by FER+" if args.ferplus else ""))
    print(
        f"{'checkpoint':<28} {'canvas':<10} {'thr':>4} {'retry':>5} {'rotate':<6} {'direct':>6} {'found':>6} {'e2e':>6}"
        f" {'loss pt':>7} {'+-95%':>5} {'missed':>6} {extra:>19} {'det ms':>6}"
    )
    for r in rows:
        print(
            f"{r['checkpoint'][-28:]:<28} {r['background']:<10} {r['threshold'] or 0:4.2f}"
            f" {r['retry_scale'] or '-':>5} {r['rotate']!s:<6}"
            f" {r['direct_accuracy']:6.4f} {r['detected']:6.3f} {r['accuracy']:6.4f} {r['loss_pt']:7.2f}"
            f" {r['ci95_pt']:5.2f} {r['missed_pt']:6.2f}"
            f" {r['faces_loss_pt'] if args.ferplus else '':>19} {r['detect_ms']:6.1f}"
        )
    for r in oracles:
        print(
            f"oracle frame: {r['checkpoint'][-28:]} {r['background']}: {r['accuracy']:.4f}"
            f" ({r['loss_pt']:.2f} +- {r['ci95_pt']:.2f} pt)"
        )
    if "frame_on_training" in results:
        print("box vs FER2013 frame on Training (median, p10, p90):", results["frame_on_training"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
