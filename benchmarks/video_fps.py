"""End-to-end FPS of `edgefer video` on this machine, at 1 and 2 threads.

The clip is made here: 640x480, the two sample photos side by side (two faces), panning slowly.
Each configuration runs the whole `run_video` loop (decode, detect, align, classify, draw, encode
to MP4) over the clip after a short warm-up, RetinaFace at ``--detect-side`` as in ``edgefer video``;
FPS is frames / wall time. ``--runtimes`` runs the classifier in eager PyTorch (``torch``) and/or in
ONNX Runtime (``onnxruntime``: the default model exported here in FP32, as ``edgefer export`` writes
it; ``edgefer video --runtime onnxruntime``).

    .venv/bin/python benchmarks/video_fps.py --frames 150 --runtimes torch onnxruntime --json docs/video_fps.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import torch

from edgefer.annotate import draw_results
from edgefer.edge import EdgeRunner
from edgefer.faces import get_detector
from edgefer.photos import read_photo, sample_photos
from edgefer.pipeline import FacePipeline
from edgefer.video import run_video


def make_clip(path: Path, frames: int) -> None:
    a, g = (cv2.resize(read_photo(p), (320, 360)) for p in sample_photos())
    strip = np.concatenate([a, g], axis=1)  # 640 x 360
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (640, 480))
    for i in range(frames):
        frame = np.full((480, 640, 3), 200, np.uint8)
        top = 20 + round(60 * i / frames)
        frame[top : top + 360] = np.roll(strip, i, axis=1)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--detector", default="retinaface")
    parser.add_argument("--runtimes", nargs="+", choices=("torch", "onnxruntime"), default=["torch"])
    parser.add_argument("--detect-side", type=int, default=640, help="as `edgefer video --detect-side`")
    parser.add_argument("--json")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames)
        for runtime, threads in ((r, t) for r in args.runtimes for t in (1, 2)):
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            kwargs = {"threads": threads, "max_side": args.detect_side} if args.detector == "retinaface" else {}
            runner = EdgeRunner("default", runtime=runtime, threads=threads)  # ONNX Runtime: exported once, cached
            pipeline = FacePipeline(runner, detector=get_detector(args.detector, **kwargs))
            if hasattr(pipeline.detector, "retry_scale"):  # as `edgefer video`: no second look at a frame
                pipeline.detector.retry_scale = None
            for every in (1, 5):
                warm = cv2.VideoCapture(str(clip))
                run_video(warm, pipeline, max_frames=10)
                warm.release()
                capture = cv2.VideoCapture(str(clip))
                stats = run_video(capture, pipeline, out=Path(tmp) / "out.mp4", every=every, draw=draw_results)
                capture.release()
                row = {"runtime": runtime, "threads": threads, "detect_every": every}
                row |= {"frames": stats.frames, "faces": stats.faces}
                row |= {"fps": round(stats.fps, 1), **{f"{k}_ms": round(stats.ms(k), 1) for k in stats.parts}}
                rows.append(row)
                print(row, flush=True)
    print(
        f"\n{'runtime':<12} {'threads':>7} {'detect every':>12} {'FPS':>6} {'read':>6} {'detect':>7} {'classify':>9}"
        f" {'write':>6}  (ms/frame)"
    )
    for r in rows:
        print(f"{r['runtime']:<12} {r['threads']:>7} {r['detect_every']:>12} {r['fps']:>6.1f} {r['read_ms']:>6.1f}"
              f" {r['detect_ms']:>7.1f} {r['classify_ms']:>9.1f} {r['write_ms']:>6.1f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            meta = {"detector": args.detector, "detect_side": args.detect_side, "clip": "640x480, 2 faces"}
            json.dump({**meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
