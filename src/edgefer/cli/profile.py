"""``edgefer profile``: params, MACs and batch-1 CPU latency per model (the paper's Table 4).

Usage:
    edgefer profile
    edgefer profile --models shufflenet,shufflenet_asp_sfp --threads 1 --json
    edgefer profile --models 'resnet18*' --no-onnx
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

from ..bench.profiling import ProfileRow, profile_models
from ..models import available

DEFAULT_MODELS = "shufflenet,shufflenet_asp,shufflenet_sfp,shufflenet_asp_sfp,shufflenet_sfp_asp"


def _expand(patterns: str) -> list[str]:
    names: list[str] = []
    for pattern in filter(None, (p.strip() for p in patterns.split(","))):
        matches = available(pattern)
        if not matches:
            raise typer.BadParameter(f"no model matches {pattern!r}; available: {', '.join(available())}")
        names += [m for m in matches if m not in names]
    return names


def profile(
    models: Annotated[
        str, typer.Option(help="Comma-separated model names or shell patterns (see `edgefer models`).")
    ] = DEFAULT_MODELS,
    input_size: Annotated[int, typer.Option(min=32, help="Square input size in pixels.")] = 224,
    threads: Annotated[int, typer.Option(min=1, help="CPU threads for PyTorch and ONNX Runtime.")] = 2,
    rounds: Annotated[int, typer.Option(min=1, help="Round-robin timing rounds.")] = 60,
    per_round: Annotated[int, typer.Option(min=1, help="Timed calls per model per round.")] = 5,
    onnx: Annotated[bool, typer.Option(help="Also export to ONNX and time ONNX Runtime.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list instead of a table.")] = False,
) -> None:
    """Params, MACs (torch.utils.flop_counter) and median batch-1 latency, eager and ONNX Runtime."""
    names = _expand(models)
    err = Console(stderr=True)
    with err.status("profiling") as status:
        rows = profile_models(
            names,
            input_size=input_size,
            threads=threads,
            rounds=rounds,
            per_round=per_round,
            onnx=onnx,
            progress=lambda message: status.update(message),
        )
    if as_json:
        typer.echo(json.dumps([row.as_dict() for row in rows], indent=2))
        return

    typer.echo(f"batch 1, {input_size} px, {threads} thread(s), median of {rounds * per_round} calls per model")
    typer.echo(format_table(rows))


def format_table(rows: list[ProfileRow]) -> str:
    """A plain aligned text table (it pastes into Markdown code blocks as is)."""

    def ratio(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}x"

    header = ("model", "params", "MACs", "eager ms", "eager/backbone", "ORT ms", "ORT/backbone")
    lines = [header] + [
        (
            row.model,
            f"{row.params / 1e6:.3f} M",
            f"{row.macs / 1e9:.4f} G",
            f"{row.eager_ms:.2f}",
            ratio(row.eager_ratio),
            "" if row.ort_ms is None else f"{row.ort_ms:.2f}",
            ratio(row.ort_ratio),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def render(line: tuple[str, ...]) -> str:
        numbers = (cell.rjust(w) for cell, w in zip(line[1:], widths[1:], strict=True))
        return "  ".join([line[0].ljust(widths[0]), *numbers])

    return "\n".join(render(line) for line in lines)
