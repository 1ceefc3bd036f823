"""``edgefer video``: expressions in a video file or a camera stream, per person, with an annotated copy.

Usage:
    edgefer video clip.mp4 --out annotated.mp4 --csv per_frame.csv --timeline people.png --summary people.csv
    edgefer video --camera 0 --every 5            # detect and classify every 5th frame, track the faces between
    edgefer video clip.mp4 --jsonl frames.jsonl --smooth ema --tracker sort

Faces are detected every ``--every`` frames; between detections a tracker (OC-SORT by default)
predicts where each face has moved, and every face keeps a track ID while it stays in view. All faces
of a frame are classified as one batch, on the detection frames by default (``--classify-every``;
between, each person keeps their last expression), and each track's expression is smoothed over time
(``--smooth``; the raw scores are in the CSV/JSONL too). At the end it prints the end-to-end frames
per second and where the time went, and a summary per person.

Bad input: an undecodable frame is skipped with a warning and counted; a camera that disappears
ends the run cleanly, with everything already written flushed.
"""

from __future__ import annotations

import contextlib
import csv
import json
from pathlib import Path
from typing import Annotated

import typer

from .options import (
    CheckpointOpt,
    CloudOpt,
    Detector,
    DetectorOpt,
    EscalateRateOpt,
    EscalateThresholdOpt,
    Runtime,
    RuntimeOpt,
    Smoothing,
    Strategy,
    StrategyOpt,
    ThreadsOpt,
    TokenFileOpt,
    Tracker,
    make_pipeline,
)


def video(
    source: Annotated[Path | None, typer.Argument(help="A video file (anything OpenCV's FFmpeg reads).")] = None,
    camera: Annotated[int | None, typer.Option(help="Read from this camera index instead of a file.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the annotated video here (.mp4 or .avi).")] = None,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="One row per face per frame.")] = None,
    jsonl: Annotated[Path | None, typer.Option(help="One JSON line per face per frame.")] = None,
    timeline: Annotated[Path | None, typer.Option(help="Each person's expressions over time, as a PNG.")] = None,
    summary: Annotated[
        Path | None, typer.Option(help="One row per person: duration, dominant expression, shares.")
    ] = None,
    every: Annotated[int, typer.Option(min=1, help="Detect faces every K-th frame; track them between.")] = 1,
    classify_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Classify the faces every K-th frame; between, each person keeps their last expression "
            "(a new face is classified at once). Default: as --every.",
        ),
    ] = None,
    tracker: Annotated[Tracker, typer.Option(help="Who is who across frames (none: hold boxes, no IDs).")] = "ocsort",
    smooth: Annotated[Smoothing, typer.Option(help="Smoothing of each person's expression over time.")] = "hmm",
    detect_side: Annotated[
        int,
        typer.Option(
            min=64,
            help="Detect on frames shrunk to this longer side: 320 doubles the FPS but finds fewer faces "
            "and reads them worse (docs/RESULTS.md).",
        ),
    ] = 640,
    detect_ahead: Annotated[
        bool,
        typer.Option(
            "--detect-ahead/--no-detect-ahead",
            help="Read and detect on a thread of their own, ahead of the rest, with the classifier on one "
            "thread (2 faces, 2 cores: 33.5 against 28.9 FPS detecting every frame, 116 against 110 every 5th).",
        ),
    ] = True,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Stop after this many frames.")] = None,
    checkpoint: CheckpointOpt = "default",
    detector: DetectorOpt = Detector.retinaface,
    strategy: StrategyOpt = Strategy.edge,
    cloud: CloudOpt = None,
    token_file: TokenFileOpt = None,
    escalate_rate: EscalateRateOpt = None,
    escalate_threshold: EscalateThresholdOpt = None,
    threads: ThreadsOpt = None,
    runtime: RuntimeOpt = Runtime.onnxruntime,
) -> None:
    """Track every face, predict its expression frame by frame, and report FPS and a summary per person."""
    import cv2
    import pandas as pd
    from tqdm import tqdm

    from ..annotate import draw_results
    from ..timeline import plot_timeline, summarize_tracks
    from ..video import run_video

    if (source is None) == (camera is None):
        raise typer.BadParameter("give a video file or --camera N (one of them)")
    if source is not None and not source.is_file():
        raise typer.BadParameter(f"{source}: no such file")
    capture = cv2.VideoCapture(str(source) if source is not None else camera)
    if not capture.isOpened():
        raise typer.BadParameter(f"cannot open {source if source is not None else f'camera {camera}'}")
    pipeline = make_pipeline(
        checkpoint, detector, strategy, cloud, token_file, threads, runtime,
        escalate_rate=escalate_rate, escalate_threshold=escalate_threshold,
        classifier_threads=1 if detect_ahead else None,  # the other core is the detector's
    )  # fmt: skip
    if hasattr(pipeline.detector, "max_side"):
        pipeline.detector.max_side, pipeline.detector.retry_scale = detect_side, None
    classes = pipeline.runner.classes
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    if max_frames and total:
        total = min(total, max_frames)
    rows: list[dict] = []
    with contextlib.ExitStack() as stack:  # files, the capture and the cloud connection close on any exit
        stack.callback(capture.release)
        stack.callback(pipeline.runner.close)
        table = csv.writer(stack.enter_context(csv_path.open("w", newline=""))) if csv_path else None
        lines = stack.enter_context(jsonl.open("w")) if jsonl else None
        if table:
            table.writerow(["frame", "time", "track_id", "x1", "y1", "x2", "y2", "label", *classes,
                            *(f"raw_{c}" for c in classes)])  # fmt: skip
        bar = stack.enter_context(tqdm(total=total, unit="frame", desc="video", disable=None))

        def on_frame(index: int, seconds: float, results) -> None:
            for r in results:
                raw = r.raw_scores or r.scores
                row = {"frame": index, "time": round(seconds, 3), "track_id": r.track_id, "box": list(r.box),
                       "label": r.label, "scores": {c: round(r.scores[c], 4) for c in classes},
                       "raw_scores": {c: round(raw[c], 4) for c in classes}}  # fmt: skip
                rows.append({"frame": index, "time": seconds, "track_id": r.track_id, "label": r.label, **r.scores})
                if table:
                    table.writerow([index, f"{seconds:.3f}", "" if r.track_id is None else r.track_id, *r.box,
                                    r.label, *(f"{r.scores[c]:.4f}" for c in classes),
                                    *(f"{raw[c]:.4f}" for c in classes)])  # fmt: skip
                if lines:
                    lines.write(json.dumps(row) + "\n")
            bar.update(1)

        stats = run_video(
            capture, pipeline, out=out, every=every, classify_every=classify_every or every, max_frames=max_frames,
            live=camera is not None,
            tracker=None if tracker == "none" else str(tracker), smooth=str(smooth), draw=draw_results,
            on_frame=on_frame, detect_ahead=detect_ahead,
        )  # fmt: skip
    if stats.frames == 0:
        raise typer.BadParameter(f"{source if source is not None else f'camera {camera}'}: no frames could be read")
    typer.echo(
        f"{stats.frames} frames, {stats.faces} faces, {len(stats.tracks)} people in {stats.seconds:.1f} s: "
        f"{stats.fps:.1f} FPS end to end (per frame: read {stats.ms('read'):.1f} ms, detect "
        f"{stats.ms('detect'):.1f} ms, track {stats.ms('track'):.1f} ms, classify {stats.ms('classify'):.1f} ms, "
        f"annotated copy {stats.ms('write'):.1f} ms)"
    )
    if stats.skipped:
        typer.echo(f"edgefer: warning: {stats.skipped} frame(s) could not be decoded and were skipped", err=True)
    frames = pd.DataFrame(rows, columns=["frame", "time", "track_id", "label", *classes])
    people = summarize_tracks(frames, classes)
    for person in people.itertuples():
        typer.echo(f"person {person.track_id}: {person.duration_s:.1f} s, mostly {person.dominant}")
    if summary:
        people.to_csv(summary, index=False)
    if timeline:
        plot_timeline(frames, classes, timeline, title=str(source if source is not None else f"camera {camera}"))
    if out:
        typer.echo(f"annotated video: {out}")
