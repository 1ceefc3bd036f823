"""``edgefer serve``: the cloud server (Open Inference Protocol v2 over HTTP/REST).

Usage:
    edgefer serve                                   # loopback, port 8000, the shipped model
    edgefer serve --host 0.0.0.0 --token-file token.txt --checkpoint runs/full/best
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

log = logging.getLogger("edgefer")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on; beyond loopback a token is required.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    token_file: Annotated[Path | None, typer.Option(help="File holding the bearer token clients must send.")] = None,
    checkpoint: Annotated[str, typer.Option(help="Checkpoint folder, or 'default' for the shipped model.")] = "default",
    max_batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass at most.")] = 8,
    max_delay_ms: Annotated[float, typer.Option(min=0, help="How long a batch waits to fill.")] = 2.0,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body, in MB.")] = 4.0,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for the model.")] = None,
    runtime: Annotated[
        str, typer.Option(help="torch (a checkpoint), or onnxruntime / openvino (an `edgefer export` folder).")
    ] = "torch",
) -> None:
    """Serve the split, full and suffix models of a checkpoint; see the README for their names."""
    import torch
    import uvicorn

    from ..pretrained import load_pretrained
    from ..serving import DataPlane, create_app, served_models
    from ..serving.app import check_bind
    from ..train.checkpoint import preprocess_of

    token = None
    if token_file is not None:
        token = token_file.read_text().strip()
        if not token:
            raise typer.BadParameter(f"{token_file} is empty")
    check_bind(host, token)
    if threads:
        torch.set_num_threads(threads)
    if runtime == "torch":
        net, meta = load_pretrained(checkpoint)
        models = served_models(net, preprocess_of(meta))
    else:
        from ..export import load_export
        from ..serving import served_export_models

        models = served_export_models(*load_export(checkpoint, runtime, threads))
    plane = DataPlane(models, max_batch_size=max_batch_size, max_delay_ms=max_delay_ms)
    app = create_app(plane, token=token, max_body_bytes=int(max_body_mb * 1024 * 1024))
    log.info("serving %s on http://%s:%d: %s", checkpoint, host, port, ", ".join(sorted(plane.models)))
    uvicorn.run(app, host=host, port=port, log_level="warning")
