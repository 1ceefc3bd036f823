"""Detector comparison: faces found, false detections and time per image, on the sample photos and
on a five-face collage assembled from them (different sizes, a mirror image, a 20-degree tilt and a
low-contrast copy).

Ground truth is a hand-drawn box per sample photo, carried through each transform. A detection
matches a true face when their IoU is >= 0.3 (detectors draw boxes of different extent); every
other detection is false. Time is the median of --repeats runs per image, after one warm-up.

``--thresholds`` sweeps RetinaFace's score threshold over the same photos plus 11 images without a
face (matplotlib's logo and sample images, its two elevation maps drawn in gray, five canvases of
smooth noise like those of end_to_end_accuracy.py, and the parts of the two photos away from the
face), to see what a lower threshold costs in false detections.

    .venv/bin/python benchmarks/detectors.py --threads 2 --repeats 5 --json docs/detectors.json \
        --collage docs/detectors_collage.png --thresholds 0.5 0.3 0.2 0.15 0.1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import matplotlib
import numpy as np

from edgefer.faces import DETECTORS, get_detector
from edgefer.faces.synthetic import noise_canvas
from edgefer.photos import read_photo, sample_photos

TRUTH = {"astronaut.jpg": (172, 52, 276, 182), "grace_hopper.jpg": (178, 108, 356, 330)}  # drawn by hand


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def place(canvas, photo, box, x, y, scale, *, mirror=False, angle=0.0, contrast=1.0):
    """Paste a transformed photo at (x, y); return the face box in canvas coordinates."""
    h, w = photo.shape[:2]
    img = cv2.resize(photo, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    b = np.array(box, float) * scale
    if mirror:
        img = img[:, ::-1]
        b = np.array([img.shape[1] - b[2], b[1], img.shape[1] - b[0], b[3]])
    if angle:
        m = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), angle, 1.0)
        img = cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)
        corners = np.array([[b[0], b[1], 1], [b[2], b[1], 1], [b[0], b[3], 1], [b[2], b[3], 1]]) @ m.T
        c = corners.mean(0)  # the rotated face: same size, centred on the rotated centre
        b = np.array(
            [c[0] - (b[2] - b[0]) / 2, c[1] - (b[3] - b[1]) / 2, c[0] + (b[2] - b[0]) / 2, c[1] + (b[3] - b[1]) / 2]
        )
    if contrast != 1.0:
        img = np.clip((img.astype(np.float32) - 128) * contrast + 128, 0, 255).astype(np.uint8)
    canvas[y : y + img.shape[0], x : x + img.shape[1]] = img
    return tuple(b + np.array([x, y, x, y]))


def collage(photos: dict[str, np.ndarray]) -> tuple[np.ndarray, list[tuple]]:
    canvas = np.full((700, 1400, 3), 235, np.uint8)
    a, g = photos["astronaut.jpg"], photos["grace_hopper.jpg"]
    truth = [
        place(canvas, a, TRUTH["astronaut.jpg"], 0, 0, 1.0),
        place(canvas, g, TRUTH["grace_hopper.jpg"], 520, 0, 0.8),
        place(canvas, a, TRUTH["astronaut.jpg"], 950, 0, 0.6, mirror=True),
        place(canvas, g, TRUTH["grace_hopper.jpg"], 950, 330, 0.6, angle=20),
        place(canvas, a, TRUTH["astronaut.jpg"], 520, 500, 0.35, contrast=0.5),
    ]
    return canvas, truth


def no_face_images(photos: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Images with no face in them, from matplotlib's sample data, noise, and the photos away from the face."""
    root = Path(matplotlib.get_data_path()) / "sample_data"
    images = {name: read_photo(root / name) for name in ("logo2.png", "Minduka_Present_Blue_Pack.png")}
    for name in ("topobathy.npz", "jacksboro_fault_dem.npz"):
        with np.load(root / name) as npz:
            z = npz[npz.files[0]].astype(np.float64)
        gray = ((z - z.min()) / np.ptp(z) * 255).astype(np.uint8)
        images[name] = np.repeat(gray[..., None], 3, axis=2)
    rng = np.random.default_rng(0)
    for k in range(5):
        images[f"noise {k}"] = np.repeat(noise_canvas(rng)[..., None], 3, axis=2)
    astronaut, hopper = photos["astronaut.jpg"], photos["grace_hopper.jpg"]
    images["astronaut.jpg below the face"] = astronaut[TRUTH["astronaut.jpg"][3] + 10 :].copy()
    images["grace_hopper.jpg below the face"] = hopper[TRUTH["grace_hopper.jpg"][3] + 10 :].copy()
    return images


def threshold_sweep(images, blanks, thresholds: list[float], threads: int) -> tuple[list[dict], dict[str, float]]:
    """Faces found and false detections at each RetinaFace threshold, on the photos and on images without faces.

    Each threshold gets its own detector: where nothing reaches it, RetinaFace looks again larger.
    """
    rows = []
    for t in sorted(thresholds, reverse=True):
        detector = get_detector("retinaface", threshold=t, threads=threads)
        found = false = 0
        for rgb, truth in images.values():
            matched, extra = score(detector(rgb), truth)
            found, false = found + matched, false + extra
        blank_false = sum(len(detector(rgb)) for rgb in blanks.values())
        rows.append({"threshold": t, "faces": sum(len(truth) for _, truth in images.values()), "found": found,
                     "false_on_photos": false, "false_on_no_face_images": blank_false})  # fmt: skip
    # the highest score at either look the deployed detector may take: as given, and enlarged for its retry
    lowest = get_detector("retinaface", threshold=0.01, threads=threads)
    retry = detector.retry_scale  # the default, as for every detector above
    top = {}
    for name, rgb in blanks.items():
        enlarged = cv2.resize(rgb, None, fx=retry, fy=retry, interpolation=cv2.INTER_LINEAR)
        top[name] = round(max((f.score for f in lowest(rgb) + lowest(enlarged)), default=0.0), 3)
    return rows, top


def score(faces, truth) -> tuple[int, int]:
    matched, used = 0, set()
    for t in truth:
        best = max(range(len(faces)), key=lambda i: iou(faces[i].box, t), default=None)
        if best is not None and best not in used and iou(faces[best].box, t) >= 0.3:
            matched += 1
            used.add(best)
    return matched, len(faces) - len(used)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--collage", help="save the collage with each detector's boxes here (PNG)")
    parser.add_argument("--thresholds", type=float, nargs="*", help="RetinaFace score thresholds to sweep")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)

    photos = {p.name: read_photo(p) for p in sample_photos()}
    images = {name: (rgb, [TRUTH[name]]) for name, rgb in photos.items()}
    images["collage (5 faces)"] = collage(photos)
    rows = []
    drawn = images["collage (5 faces)"][0].copy()
    colors = {"retinaface": (0, 170, 0), "dlib": (0, 0, 230), "haar": (230, 0, 0)}
    for name in DETECTORS:
        detector = get_detector(name, threads=args.threads) if name == "retinaface" else get_detector(name)
        for image_name, (rgb, truth) in images.items():
            detector(rgb)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                faces = detector(rgb)
                times.append(1000 * (time.perf_counter() - start))
            found, false = score(faces, truth)
            rows.append({"detector": name, "image": image_name, "faces": len(truth), "found": found,
                         "false": false, "ms": round(statistics.median(times), 1)})  # fmt: skip
            if image_name.startswith("collage"):
                for f in faces:
                    x1, y1, x2, y2 = (round(v) for v in f.box)
                    cv2.rectangle(drawn, (x1, y1), (x2, y2), colors[name], 3)
    print(f"{'detector':<11}{'image':<19}{'found':>8}{'false':>7}{'ms':>8}")
    for r in rows:
        print(f"{r['detector']:<11}{r['image']:<19}{r['found']:>5}/{r['faces']:<2}{r['false']:>7}{r['ms']:>8.1f}")
    results = {"threads": args.threads, "rows": rows}
    if args.thresholds:
        sweep, top = threshold_sweep(images, no_face_images(photos), args.thresholds, args.threads)
        results |= {"retinaface_thresholds": sweep, "retinaface_top_score_without_faces": top}
        print(f"\nRetinaFace threshold sweep ({len(top)} images without faces; top score there: {max(top.values())})")
        print(f"{'threshold':>9}{'found':>8}{'false (photos)':>16}{'false (no-face images)':>24}")
        for r in sweep:
            found = f"{r['found']}/{r['faces']}"
            print(f"{r['threshold']:>9}{found:>8}{r['false_on_photos']:>16}{r['false_on_no_face_images']:>24}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    if args.collage:
        cv2.imwrite(args.collage, cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
