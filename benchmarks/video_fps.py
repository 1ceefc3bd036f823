"""End-to-end FPS of `edgefer video` on this machine, at 1 and 2 threads.

The clip is made here: 640x480, the two sample photos side by side (two faces), panning slowly.
Each configuration runs the whole `run_video` loop (decode, detect, track, align, classify, draw,
encode to MP4) over the clip after a short warm-up, RetinaFace at ``--detect-side`` as in ``edgefer
video``; FPS is frames / wall time. ``--modes`` lists (detect every, classify every) pairs, as
``edgefer video --every K --classify-every C``; ``--outputs none`` also runs without the annotated
MP4 (the per-frame rows only, as ``edgefer video clip.mp4 --csv F``). ``--runtimes`` runs the
classifier in eager PyTorch (``torch``) and/or in ONNX Runtime (``onnxruntime``: the default model
exported here in FP32, as ``edgefer export`` writes it; ``edgefer video --runtime onnxruntime``).

    .venv/bin/python benchmarks/video_fps.py --frames 150 --runtimes torch onnxruntime --json docs/video_fps.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from edgefer.annotate import draw_results
from edgefer.bench.profiling import parse_pids, paused
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
    parser.add_argument("--modes", nargs="+", default=["1:1", "5:5"], help="EVERY:CLASSIFY_EVERY pairs")
    parser.add_argument("--outputs", nargs="+", choices=("mp4", "none"), default=["mp4"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--pause", default="", help="PIDs to pause while timing (training in the background)")
    parser.add_argument("--repeat", type=int, default=1, help="run every configuration N times, in turn; medians")
    parser.add_argument(
        "--write-behind", nargs="+", choices=("auto", "on", "off"), default=["auto"],
        help="the annotated copy on its own thread: run_video's choice, always, never",
    )  # fmt: skip
    parser.add_argument(
        "--detect-ahead", nargs="+", choices=("on", "off"), default=["off"],
        help="read and detect on a thread of their own, ahead of the rest (run_video(detect_ahead=))",
    )  # fmt: skip
    parser.add_argument("--detector-threads", type=int, help="the detector's threads (default: as --threads)")
    parser.add_argument("--json")
    args = parser.parse_args()

    modes = [tuple(int(v) for v in mode.split(":")) for mode in args.modes]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, paused(parse_pids(args.pause)):
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames)
        for runtime, threads in ((r, t) for r in args.runtimes for t in args.threads):
            torch.set_num_threads(threads)
            cv2.setNumThreads(threads)
            detector_threads = args.detector_threads or threads
            kwargs = (
                {"threads": detector_threads, "max_side": args.detect_side} if args.detector == "retinaface" else {}
            )
            runner = EdgeRunner("default", runtime=runtime, threads=threads)  # ONNX Runtime: exported once, cached
            pipeline = FacePipeline(runner, detector=get_detector(args.detector, **kwargs))
            if hasattr(pipeline.detector, "retry_scale"):  # as `edgefer video`: no second look at a frame
                pipeline.detector.retry_scale = None
            grid = itertools.product(range(args.repeat), modes, args.outputs, args.write_behind, args.detect_ahead)
            for repeat, (every, classify_every), output, behind, ahead in grid:
                if output == "none" and behind != args.write_behind[0]:
                    continue  # nothing is written: one row is enough
                warm = cv2.VideoCapture(str(clip))
                run_video(warm, pipeline, max_frames=10)
                warm.release()
                capture = cv2.VideoCapture(str(clip))
                out = Path(tmp) / "out.mp4" if output == "mp4" else None
                write_behind = {"auto": None, "on": True, "off": False}[behind]
                stats = run_video(capture, pipeline, out=out, every=every, classify_every=classify_every,
                                  draw=draw_results, write_behind=write_behind, detect_ahead=ahead == "on")  # fmt: skip
                capture.release()
                row = {"runtime": runtime, "threads": threads, "detect_every": every, "classify_every": classify_every}
                row |= {"output": output, "write_behind": behind if output == "mp4" else "", "repeat": repeat}
                row |= {"detect_ahead": ahead, "detector_threads": detector_threads}
                row |= {"frames": stats.frames, "faces": stats.faces}
                row |= {"fps": round(stats.fps, 1), **{f"{k}_ms": round(stats.ms(k), 1) for k in stats.parts}}
                rows.append(row)
                print(row, flush=True)
    config = ["runtime", "threads", "detector_threads", "detect_every", "classify_every", "output", "write_behind",
              "detect_ahead"]  # fmt: skip
    times = ["fps", "read_ms", "detect_ms", "track_ms", "classify_ms", "write_ms"]
    table = pd.DataFrame(rows).groupby(config, sort=False)[times].median().reset_index()
    print(f"\nmedians of {args.repeat} run(s) each\n" + table.to_string(index=False))
    if args.json:
        with open(args.json, "w") as f:
            meta = {"detector": args.detector, "detect_side": args.detect_side, "clip": "640x480, 2 faces"}
            json.dump({**meta, "repeat": args.repeat, "medians": table.to_dict("records"), "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
