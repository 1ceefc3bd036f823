"""`edgefer video` as a user runs it, with and without ``--detect-ahead``: the FPS it prints.

The clip is video_fps.py's (640x480, two faces, panning). Each run is a fresh `edgefer video` process
(ONNX Runtime classifier, RetinaFace at 640 px, OC-SORT, HMM smoothing), writing the annotated MP4
(``--out``) or the per-frame rows only (``--csv``); the runs take turns, ``--repeat`` times, and the
table gives medians and ranges. Training in the background can be paused while timing (``--pause``).

    .venv/bin/python benchmarks/video_cli.py --threads 2 --repeat 5 --json docs/video_cli.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from edgefer.bench.profiling import parse_pids, paused

sys.path.insert(0, str(Path(__file__).parent))
from video_fps import make_clip

EDGEFER = Path(sys.executable).with_name("edgefer")
FIGURES = re.compile(
    r"([\d.]+) FPS end to end \(per frame: read ([\d.]+) ms, detect ([\d.]+) ms, track ([\d.]+) ms, "
    r"classify ([\d.]+) ms, annotated copy ([\d.]+) ms\)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pause", default="", help="PIDs to pause while timing (training in the background)")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, paused(parse_pids(args.pause)):
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames)
        outputs = {"mp4": ["--out", f"{tmp}/out.mp4"], "rows only": ["--csv", f"{tmp}/out.csv"]}
        grid = itertools.product(range(args.repeat), ("--no-detect-ahead", "--detect-ahead"), outputs)
        for repeat, ahead, output in grid:
            command = [str(EDGEFER), "video", str(clip), "--threads", str(args.threads), "--every", str(args.every)]
            done = subprocess.run([*command, ahead, *outputs[output]], capture_output=True, text=True, check=True)
            found = FIGURES.search(" ".join(done.stdout.split()))  # however the terminal wrapped it
            if found is None:
                raise RuntimeError(f"no FPS line in edgefer video's output:\n{done.stdout}")
            fps, *parts = map(float, found.groups())
            row = {"detect_ahead": ahead == "--detect-ahead", "output": output, "repeat": repeat, "fps": fps}
            row |= dict(zip(("read_ms", "detect_ms", "track_ms", "classify_ms", "write_ms"), parts, strict=True))
            rows.append(row)
            print(row, flush=True)
    table = pd.DataFrame(rows).groupby(["detect_ahead", "output"], sort=False)["fps"]
    summary = table.agg(["median", "min", "max"]).reset_index()
    print(
        f"\n{args.repeat} runs each, threads {args.threads}, detect every {args.every}\n"
        + summary.to_string(index=False)
    )
    if args.json:
        meta = {"threads": args.threads, "every": args.every, "frames": args.frames, "clip": "640x480, 2 faces"}
        Path(args.json).write_text(json.dumps({**meta, "summary": summary.to_dict("records"), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
