"""``edgefer serve``: the cloud server (Open Inference Protocol v2 over HTTP/REST).

Usage:
    edgefer serve                                   # loopback, port 8000, the shipped models
    edgefer serve --host 0.0.0.0 --token-file token.txt --checkpoint runs/full/best --large runs/large/last
    edgefer serve --checkpoint exports/split --runtime onnxruntime

Serves ``full`` and the split models of ``--checkpoint``, and ``full-large`` from ``--large`` (by
default the shipped ``default-large``, where this installation has one).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from .options import CheckpointOpt, Runtime, RuntimeOpt, ThreadsOpt, TokenFileOpt, read_token

log = logging.getLogger("edgefer")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback a token is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    token_file: TokenFileOpt = None,
    checkpoint: CheckpointOpt = "default",
    large: Annotated[
        str | None,
        typer.Option(help="The larger model served as full-large ('default-large': the shipped one, if any)."),
    ] = "default-large",
    no_large: Annotated[bool, typer.Option("--no-large", help="Serve no full-large model.")] = False,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass at most.")] = 8,
    max_delay_ms: Annotated[float, typer.Option(min=0, help="How long a batch waits to fill.")] = 2.0,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, in MB.")] = 4.0,
    threads: ThreadsOpt = None,
    runtime: RuntimeOpt = Runtime.auto,
) -> None:
    """Serve the full, split and suffix models of a checkpoint, and full-large; see the README for their names."""
    import torch
    import uvicorn

    from ..loading import NAMED, load_model
    from ..serving import DataPlane, create_app, served_models
    from ..serving.app import check_bind

    token = read_token(token_file)
    check_bind(host, token)
    if threads:
        torch.set_num_threads(threads)
    model = load_model(checkpoint, str(runtime), threads)
    large_model = None
    if large and not no_large:
        if large in NAMED and not (Path(NAMED[large]) / "model.json").is_file():
            log.info("no %s model in this installation: serving no full-large", large)
        else:
            large_model = load_model(large, str(runtime), threads)
    plane = DataPlane(served_models(model, large=large_model), max_batch_size=max_batch_size, max_delay_ms=max_delay_ms)
    app = create_app(plane, token=token, max_body_bytes=int(max_body_mb * 1024 * 1024))
    log.info("serving %s on http://%s:%d: %s", checkpoint, host, port, ", ".join(sorted(plane.models)))
    uvicorn.run(app, host=host, port=port, log_level="warning")
