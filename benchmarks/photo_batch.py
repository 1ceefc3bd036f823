"""Photos per second through `edgefer predict` / `edgefer.analyze`: faces classified in batches or one at a time.

A folder of ``--photos`` generated JPEGs (640x480, smooth noise, ``--faces`` FER2013 PublicTest faces
each, enlarged 2-3x at separate spots) is read, detected (RetinaFace), aligned and classified:

* ``one at a time``: each face is its own forward pass (``EdgeRunner.predict``), as before batching;
* ``batched``: :func:`edgefer.analysis.iter_photo_results`, the path of ``predict`` and ``analyze``:
  the faces of consecutive photos go together, ``--batch-size`` faces per forward pass.

Both see the same photos and detections; photos/s is end to end (read, detect, align, classify), and
the classifier's own share is given separately. Training in the background can be paused while
timing (``--pause PIDS``).

    .venv/bin/python benchmarks/photo_batch.py --data ../shared/data/fer2013/fer2013.csv.gz --json docs/photo_batch.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from edgefer.analysis import iter_photo_results
from edgefer.bench.profiling import parse_pids, paused
from edgefer.data import load_fer2013
from edgefer.edge import EdgeRunner
from edgefer.faces import get_detector
from edgefer.faces.synthetic import noise_canvas
from edgefer.loading import load_model
from edgefer.photos import iter_photos, read_photo
from edgefer.pipeline import FacePipeline


def make_photos(folder: Path, faces: np.ndarray, count: int, per_photo: int, seed: int = 0) -> None:
    """``count`` JPEGs of ``per_photo`` faces each, side by side on smooth noise."""
    rng = np.random.default_rng(seed)
    slot = 640 // per_photo
    for i in range(count):
        canvas = cv2.resize(noise_canvas(rng), (640, 480))
        for k in range(per_photo):
            face = faces[rng.integers(len(faces))]
            side = int(rng.integers(96, min(slot, 160) + 1))
            left = k * slot + int(rng.integers(0, slot - side + 1))
            top = int(rng.integers(0, 480 - side + 1))
            canvas[top : top + side, left : left + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"photo_{i:04d}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, 90])


def one_at_a_time(files: list[Path], pipeline: FacePipeline) -> tuple[int, float]:
    """Faces found and seconds spent classifying, one forward pass per face."""
    found, classify = 0, 0.0
    for path in files:
        rgb = read_photo(path)
        crops = pipeline.crops(rgb, pipeline.detect(rgb))
        start = time.perf_counter()
        for crop in crops:
            pipeline.runner.predict(crop)
        classify += time.perf_counter() - start
        found += len(crops)
    return found, classify


def batched(files: list[Path], pipeline: FacePipeline, batch_size: int) -> tuple[int, float]:
    """Faces found and seconds spent classifying (measured around the runner's batched call)."""
    spent = [0.0]
    predict_batch = pipeline.runner.predict_batch

    def timed(crops):
        start = time.perf_counter()
        out = predict_batch(crops)
        spent[0] += time.perf_counter() - start
        return out

    pipeline.runner.predict_batch = timed
    try:
        found = sum(len(photo.faces) for photo in iter_photo_results(files, pipeline, batch_size=batch_size))
    finally:
        del pipeline.runner.predict_batch
    return found, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="FER2013 CSV: PublicTest faces go into the photos")
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--faces", type=int, default=2, help="faces per photo")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runtimes", default="onnxruntime,torch")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--pause", default="", help="PIDs to stop while measuring (comma-separated)")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    faces = load_fer2013(args.data, splits=["PublicTest"])["PublicTest"].images
    rows = []
    with tempfile.TemporaryDirectory() as tmp, paused(parse_pids(args.pause)):
        folder = Path(tmp)
        make_photos(folder, faces, args.photos, args.faces)
        files = list(iter_photos([folder]))
        detector = get_detector("retinaface", threads=args.threads)
        for runtime in args.runtimes.split(","):
            pipeline = FacePipeline(EdgeRunner(load_model(args.checkpoint, runtime, args.threads)), detector=detector)
            batched(files[:20], pipeline, args.batch_size)  # warm-up: sessions, caches
            for mode in ("one at a time", "batched"):
                start = time.perf_counter()
                if mode == "batched":
                    found, classify = batched(files, pipeline, args.batch_size)
                else:
                    found, classify = one_at_a_time(files, pipeline)
                seconds = time.perf_counter() - start
                row = {"runtime": runtime, "mode": mode, "photos": len(files), "faces": found,
                       "photos_per_s": round(len(files) / seconds, 2), "seconds": round(seconds, 2),
                       "classify_ms_per_face": round(1000 * classify / max(found, 1), 3),
                       "classify_share": round(classify / seconds, 3)}  # fmt: skip
                rows.append(row)
                print(f"{runtime:<12}{mode:<15}{row['photos_per_s']:7.2f} photos/s  {found} faces  classifier "
                      f"{row['classify_ms_per_face']:6.2f} ms/face ({row['classify_share']:.0%} of the time)",
                      flush=True)  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps({"threads": args.threads, "batch_size": args.batch_size, "rows": rows}, indent=1)
        )


if __name__ == "__main__":
    main()
