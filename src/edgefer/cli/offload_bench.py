"""``edgefer offload-bench``: the paper's Fig. 8 on shaped links, plus ``auto``.

Usage:
    edgefer offload-bench --data ../shared/data/fer2013/fer2013.csv.gz --json docs/offload.json --plot docs/offload.png
    edgefer offload-bench --images my_faces/ --bandwidths 200,500,1000 --devices laptop,phone,watch=6 --rtt 20
    edgefer offload-bench --data fer2013.csv.gz --degrade 1000:200      # also: auto while the link drops

Needs root for the kernel-shaped link (network namespaces + tc tbf); without it, or when the RTT
is not zero on a kernel without netem, a userspace token-bucket proxy shapes the link instead.
The output says which.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .options import CheckpointOpt


def _faces(data: Path | None, images: list[Path] | None, count: int):
    if images:
        from ..faces import get_detector
        from ..faces.photo_faces import largest_face, photo_face_crops
        from ..photos import iter_photos

        crops, found = photo_face_crops(list(iter_photos(images)), get_detector("retinaface"), choose=largest_face)
        crops = crops[found]
        if not len(crops):
            raise typer.BadParameter("no faces found in --images")
        return crops[[i % len(crops) for i in range(count)]]
    if data is None:
        raise typer.BadParameter("give --data (FER2013 CSV: PublicTest faces are used) or --images")
    from ..data import load_fer2013

    splits = load_fer2013(data, splits=["PublicTest"])
    return splits["PublicTest"].images[:count]


def offload_bench(
    data: Annotated[Path | None, typer.Option(help="FER2013 CSV/.gz; its PublicTest faces are sent.")] = None,
    images: Annotated[list[Path] | None, typer.Option(help="Photos or folders to take faces from instead.")] = None,
    bandwidths: Annotated[
        str, typer.Option(help="Link rates in KB/s, comma-separated.")
    ] = "200,300,400,500,600,700,800,900,1000",
    rtt: Annotated[float, typer.Option(min=0, help="Round-trip delay added by the link, ms.")] = 0.0,
    devices: Annotated[
        str, typer.Option(help="laptop (1x), phone (2.25x), or NAME=FACTOR, comma-separated.")
    ] = "laptop,phone",
    strategies: Annotated[str, typer.Option(help="Any of edge, cloud, split, auto.")] = "edge,cloud,split,auto",
    requests: Annotated[int, typer.Option(min=1, help="Measured requests per point (after 3 warm-up).")] = 20,
    degrade: Annotated[
        str | None, typer.Option(help="BEFORE:AFTER KB/s: also trace auto on the slowest device while the link drops.")
    ] = None,
    checkpoint: CheckpointOpt = "default",
    proxy: Annotated[bool, typer.Option(help="Use the userspace proxy even where namespaces work.")] = False,
    pause: Annotated[
        str | None, typer.Option(help="PIDs to stop while measuring (e.g. training in the background).")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the records here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the figure here (PNG).")] = None,
) -> None:
    """Latency of edge, cloud, split and auto per bandwidth and device over a shaped link."""
    from ..bench.offload import parse_devices, run_degradation, run_offload_bench
    from ..bench.profiling import parse_pids, paused

    rates = [float(v) for v in bandwidths.split(",") if v.strip()]
    if not rates or min(rates) <= 0:
        raise typer.BadParameter(f"--bandwidths needs positive KB/s values, got {bandwidths!r}")
    chosen = [s.strip() for s in strategies.split(",") if s.strip()]
    if unknown := set(chosen) - {"edge", "cloud", "split", "auto"}:
        raise typer.BadParameter(f"unknown strategies {sorted(unknown)}")
    profiles = parse_devices(devices)
    faces = _faces(data, images, requests + 3)
    typer.echo(f"{len(profiles)} devices x {len(rates)} bandwidths x {len(chosen)} strategies, {requests} faces each")
    with paused(parse_pids(pause)):
        records = run_offload_bench(faces, rates, profiles, chosen, rtt_ms=rtt, requests=requests,
                                    checkpoint=checkpoint, force_proxy=proxy, progress=typer.echo)  # fmt: skip
    typer.echo(f"link: {records[0]['link']}, RTT added {rtt:g} ms")
    trace = None
    if degrade:
        before, _, after = degrade.partition(":")
        slowest = max(profiles.items(), key=lambda kv: kv[1])
        trace = run_degradation(faces, float(before), float(after), slowest[1], rtt_ms=rtt, checkpoint=checkpoint,
                                force_proxy=proxy)  # fmt: skip
        typer.echo(f"auto on {slowest[0]} while the link drops {before} -> {after} KB/s at request 30:")
        typer.echo("  " + " ".join(f"{t['request']}:{t['plan']}" for t in trace[25:40]))
    if json_path:
        json_path.write_text(json.dumps({"records": records, "degradation": trace}, indent=1))
    if plot:
        from ..bench.plots import plot_offload

        plot_offload(records, plot, trace, title=f"edge-cloud latency over a shaped link ({records[0]['link']})")
        typer.echo(f"figure: {plot}")
