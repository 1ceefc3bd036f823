"""``edgefer demo``: the main job. Sample photos through detection and the three strategies.

Usage:
    edgefer demo                         # the shipped sample photos; annotated copies in edgefer-demo/
    edgefer demo --photos my.jpg --out annotated/

Needs nothing but the installed package: it starts the cloud server (``edgefer serve``) on
loopback, runs each face with ``edge``, ``split``, ``cloud`` and ``auto`` (and ``escalate`` where a
larger cloud model is installed or given with ``--large``), prints every face's expression and a
latency/bytes table per strategy, writes annotated images, and stops the server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import CheckpointOpt, Detector, DetectorOpt, EscalateRateOpt, ThreadsOpt


def demo(
    photos: Annotated[list[Path] | None, typer.Option(help="Photos to use instead of the shipped samples.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the annotated photos.")] = Path("edgefer-demo"),
    repeats: Annotated[int, typer.Option(min=1, help="Times each face is sent per strategy (the latency sample).")] = 5,
    checkpoint: CheckpointOpt = "default",
    detector: DetectorOpt = Detector.retinaface,
    threads: ThreadsOpt = None,
    large: Annotated[
        str | None,
        typer.Option(help="The cloud's larger model for the escalate row (default: the shipped one, if any)."),
    ] = None,
    escalate_rate: EscalateRateOpt = 0.2,
) -> None:
    """Run the sample photos through detection and the edge, split and cloud strategies."""
    import torch
    from PIL import Image

    from ..annotate import draw_results
    from ..demo import installed_large, run_demo
    from ..faces import get_detector
    from ..photos import sample_photos

    if threads:
        torch.set_num_threads(threads)
    paths = photos or sample_photos()
    typer.echo(
        f"detector {detector.value}, model {checkpoint}, {len(paths)} photos; starting a cloud server on loopback"
    )
    kwargs = {"threads": threads} if detector is Detector.retinaface else {}
    large = large or installed_large()
    result = run_demo(
        paths, get_detector(detector.value, **kwargs), checkpoint, repeats, large=large, escalate_rate=escalate_rate
    )

    out.mkdir(parents=True, exist_ok=True)
    edge = result.faces["edge"]
    for path, rgb in result.photos.items():
        faces = edge[path][: len(edge[path]) // repeats]  # one pass's faces
        agree = all(
            [f.label for f in result.faces[s][path][: len(faces)]] == [f.label for f in faces] for s in result.faces
        )
        typer.echo(f"\n{path.name}: {len(faces)} face(s)" + ("" if agree else " (strategies disagree)"))
        for f in faces:
            top3 = sorted(f.scores.items(), key=lambda kv: -kv[1])[:3]
            typer.echo(f"  {list(f.box)}  {f.label:<8}  " + "  ".join(f"{k} {v:.2f}" for k, v in top3))
        target = out / f"{path.stem}_annotated.png"
        Image.fromarray(draw_results(rgb, faces)).save(target)
        typer.echo(f"  -> {target}")

    typer.echo(f"\nper face, {repeats} passes (latency: edge compute + encode + transfer + cloud compute + decode):")
    typer.echo(
        f"{'strategy':<9}{'faces':>6}{'median ms':>11}{'p90 ms':>8}{'edge ms':>9}{'cloud ms':>10}"
        f"{'bytes up':>10}{'bytes down':>12}"
    )
    for r in result.summary():
        typer.echo(
            f"{r['strategy']:<9}{r['faces']:>6}{r['median_ms']:>11.1f}{r['p90_ms']:>8.1f}{r['edge_ms']:>9.1f}"
            f"{r['cloud_ms']:>10.1f}{r['bytes_up']:>10.0f}{r['bytes_down']:>12.0f}"
            + (f"  ({r['fallbacks']} fell back to local)" if r["fallbacks"] else "")
            + (f"  ({r['escalated']} escalated to {large})" if r["strategy"] == "escalate" else "")
        )
    if large is None:
        typer.echo("(no larger cloud model installed: no escalate row; give one with --large)")
    typer.echo("cloud server stopped")
