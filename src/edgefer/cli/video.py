"""``edgefer video``: expressions in a video file or a camera stream, with an annotated copy.

Usage:
    edgefer video clip.mp4 --out annotated.mp4 --csv per_frame.csv
    edgefer video --camera 0 --every 5            # re-detect every 5th frame, hold boxes between
    edgefer video clip.mp4 --max-frames 300 --threads 1

Faces are detected every ``--every`` frames and held in between (the expression is still
predicted on every frame). At the end it prints the end-to-end frames per second (reading,
detection, alignment, classification, drawing and writing) and where the time went.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import typer

from .options import (
    CheckpointOpt,
    CloudOpt,
    Detector,
    DetectorOpt,
    Runtime,
    RuntimeOpt,
    Strategy,
    StrategyOpt,
    ThreadsOpt,
    TokenFileOpt,
    make_pipeline,
)


def video(
    source: Annotated[Path | None, typer.Argument(help="A video file (anything OpenCV's FFmpeg reads).")] = None,
    camera: Annotated[int | None, typer.Option(help="Read from this camera index instead of a file.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the annotated video here (.mp4 or .avi).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write one row per face per frame.")] = None,
    every: Annotated[int, typer.Option(min=1, help="Detect faces every K-th frame; hold the boxes between.")] = 1,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")] = None,
    checkpoint: CheckpointOpt = "default",
    detector: DetectorOpt = Detector.retinaface,
    strategy: StrategyOpt = Strategy.edge,
    cloud: CloudOpt = None,
    token_file: TokenFileOpt = None,
    threads: ThreadsOpt = None,
    runtime: RuntimeOpt = Runtime.auto,
) -> None:
    """Predict expressions frame by frame and report end-to-end FPS."""
    import cv2
    from tqdm import tqdm

    from ..annotate import draw_results
    from ..video import run_video

    if (source is None) == (camera is None):
        raise typer.BadParameter("give a video file or --camera N (one of them)")
    if source is not None and not source.is_file():
        raise typer.BadParameter(f"{source}: no such file")
    capture = cv2.VideoCapture(str(source) if source is not None else camera)
    if not capture.isOpened():
        raise typer.BadParameter(f"cannot open {source if source is not None else f'camera {camera}'}")
    pipeline = make_pipeline(checkpoint, detector, strategy, cloud, token_file, threads, runtime)
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames and total:
        total = min(total, max_frames)
    classes = pipeline.runner.classes
    csv_file = csv_path.open("w", newline="") if csv_path else None
    writer = csv.writer(csv_file) if csv_file else None
    if writer:
        writer.writerow(["frame", "time_s", "face", "x1", "y1", "x2", "y2", "label", *classes])
    with tqdm(total=total, unit="frame", desc="video", disable=None) as bar:

        def on_frame(index: int, seconds: float, results) -> None:
            if writer:
                for i, r in enumerate(results):
                    writer.writerow(
                        [index, f"{seconds:.3f}", i, *r.box, r.label, *(f"{r.scores[c]:.4f}" for c in classes)]
                    )
            bar.update(1)

        try:
            stats = run_video(
                capture, pipeline, out=out, every=every, max_frames=max_frames, draw=draw_results, on_frame=on_frame
            )
        finally:
            capture.release()
            if csv_file:
                csv_file.close()
            pipeline.runner.close()
    if stats.frames == 0:
        raise typer.BadParameter(f"{source}: no frames could be read")
    typer.echo(
        f"{stats.frames} frames, {stats.faces} faces in {stats.seconds:.1f} s: {stats.fps:.1f} FPS end to end "
        f"(per frame: read {stats.ms('read'):.1f} ms, detect {stats.ms('detect'):.1f} ms, "
        f"classify {stats.ms('classify'):.1f} ms, draw+write {stats.ms('write'):.1f} ms)"
    )
    if out:
        typer.echo(f"annotated video: {out}")
