"""``edgefer serve``: the cloud server (Open Inference Protocol v2 over HTTP/REST).

Usage:
    edgefer serve                                   # loopback, port 8000, the shipped models
    edgefer serve --host 0.0.0.0 --token-file token.txt --checkpoint runs/full/best --large runs/large/last
    edgefer serve --checkpoint exports/split --runtime onnxruntime
    edgefer serve --max-samples 16 --body-timeout 10     # tighter limits
    edgefer serve --engine ray --replicas 2               # the same server on Ray Serve

Serves ``full`` and the split models of ``--checkpoint``, and ``full-large`` from ``--large`` (by
default the shipped ``default-large``, where this installation has one). Every bound on what a
client can make the server do is an option under "Limits" (see ``edgefer.serving.limits``); a
request that breaks one gets a 4xx with a JSON error and costs no more than the bound.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ..serving.limits import ServerLimits
from .options import CheckpointOpt, Engine, Runtime, RuntimeOpt, ThreadsOpt, TokenFileOpt, read_token

log = logging.getLogger("edgefer")
_L = ServerLimits()


def _limit(help: str, minimum: float = 0.001):
    return typer.Option(min=minimum, help=help, rich_help_panel="Limits")


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
    engine: Annotated[
        Engine,
        typer.Option(help="local: this process (uvicorn); ray: Ray Serve deployments (pip install 'edgefer\\[ray]')."),
    ] = "local",
    replicas: Annotated[int, typer.Option(min=1, help="ray: replicas of each model deployment.")] = 1,
    autoscale: Annotated[
        str | None, typer.Option(help="ray: MIN:MAX replicas, autoscaled instead of --replicas.")
    ] = None,
    max_batch_size: Annotated[int, typer.Option(min=1, help="Samples per forward pass at most.")] = 8,
    max_delay_ms: Annotated[float, typer.Option(min=0, help="How long a batch waits to fill.")] = 2.0,
    threads: ThreadsOpt = None,
    runtime: RuntimeOpt = Runtime.auto,
    full_runtime: Annotated[
        Runtime,
        typer.Option(
            help="Runtime of the full and full-large models: onnxruntime (a checkpoint is exported once into the "
            "cache; 2x the requests/s of torch, docs/RESULTS.md), or auto to use --runtime."
        ),
    ] = Runtime.onnxruntime,
    max_body_mb: Annotated[float, _limit("Largest request body, before and after decompression (413).")] = (
        _L.max_body_bytes / 2**20
    ),
    max_samples: Annotated[int, _limit("Faces or maps per request (413).", 1)] = _L.max_samples,
    max_pixels: Annotated[int, _limit("Pixels per image (413).", 64)] = _L.max_pixels,
    max_aspect: Annotated[float, _limit("Long side / short side of an image (400).", 1)] = _L.max_aspect,
    min_side: Annotated[int, _limit("An image's shorter side, pixels (400).", 1)] = _L.min_side,
    max_headers: Annotated[int, _limit("Headers per request (431).", 1)] = _L.max_headers,
    max_header_kb: Annotated[float, _limit("Request line and headers, KB (431).", 1)] = _L.max_header_bytes / 1024,
    header_timeout: Annotated[float, _limit("Seconds to send the headers (408, then closed).")] = _L.header_timeout_s,
    body_timeout: Annotated[float, _limit("Seconds to send the body (408).")] = _L.body_timeout_s,
    keep_alive: Annotated[float, _limit("Seconds an idle keep-alive connection stays open.")] = _L.keep_alive_s,
    max_connections: Annotated[int, _limit("Concurrent connections (503 beyond).", 1)] = _L.max_connections,
    shutdown_timeout: Annotated[
        float, _limit("Seconds in-flight requests get on shutdown (SIGTERM).")
    ] = _L.graceful_shutdown_s,
) -> None:
    """Serve the full, split and suffix models of a checkpoint, and full-large; see the README for their names."""
    import torch
    import uvicorn

    from ..loading import NAMED, load_model
    from ..serving import DataPlane, create_app, served_models
    from ..serving.app import check_bind
    from ..serving.http import listening_socket, server_config

    token = read_token(token_file)
    check_bind(host, token)
    limits = ServerLimits(
        max_body_bytes=int(max_body_mb * 2**20),
        max_samples=max_samples,
        max_pixels=max_pixels,
        max_aspect=max_aspect,
        min_side=min_side,
        max_headers=max_headers,
        max_header_bytes=int(max_header_kb * 1024),
        header_timeout_s=header_timeout,
        body_timeout_s=body_timeout,
        keep_alive_s=keep_alive,
        max_connections=max_connections,
        graceful_shutdown_s=shutdown_timeout,
    )
    if engine == "ray":
        _serve_ray(checkpoint, None if no_large else large, token, str(runtime), str(full_runtime), limits,
                   replicas, autoscale, max_batch_size, max_delay_ms, threads, host, port)  # fmt: skip
        return
    # One intra-op thread for PyTorch: each served model runs in a worker thread of its own, where two
    # OpenMP threads made the full model 2-3x slower on this 2-core machine (docs/RESULTS.md, "Serving").
    torch.set_num_threads(threads or 1)
    model = load_model(checkpoint, str(runtime), threads)
    full = _on_runtime(checkpoint, model, str(full_runtime), threads)
    large_model = None
    if large and not no_large:
        if large in NAMED and not (Path(NAMED[large]) / "model.json").is_file():
            log.info("no %s model in this installation: serving no full-large", large)
        else:
            large_model = _on_runtime(large, load_model(large, str(runtime), threads), str(full_runtime), threads)
    models = served_models(model, large=large_model, full=full)
    plane = DataPlane(models, max_batch_size=max_batch_size, max_delay_ms=max_delay_ms, limits=limits)
    app = create_app(plane, token=token)
    log.info("serving %s on http://%s:%d: %s", checkpoint, host, port, ", ".join(sorted(plane.models)))
    uvicorn.Server(server_config(app, limits, host=host, port=port)).run(sockets=[listening_socket(host, port)])


def _on_runtime(source: str, model, runtime: str, threads: int | None):
    """``model`` on ``runtime`` for serving whole faces; the PyTorch model itself when that fails (with a warning)."""
    from ..loading import load_model

    if runtime == "auto" or runtime == model.runtime:
        return model
    try:
        return load_model(source, runtime, threads)
    except Exception as exc:
        log.warning("serving %s with %s: %s could not be used (%s)", source, model.runtime, runtime, exc)
        return model


def _serve_ray(checkpoint, large, token, runtime, full_runtime, limits, replicas, autoscale, batch, delay, threads,
               host, port) -> None:  # fmt: skip
    """Deploy on a local Ray instance and block until interrupted; Ray and Serve are shut down on any exit."""
    import signal
    import threading

    try:
        import ray
        from ray import serve as ray_serve

        from ..serving.ray_engine import RayOptions, build_app, patient_proxy
    except ImportError as exc:
        raise typer.BadParameter(f"--engine ray needs Ray Serve: pip install 'edgefer[ray]' ({exc})") from None
    options = RayOptions(
        replicas=replicas, autoscale=RayOptions.parse_autoscale(autoscale), max_batch_size=batch,
        batch_wait_ms=delay, threads=threads or 1,
    )  # fmt: skip
    patient_proxy()
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        http = {"host": host, "port": port, "request_timeout_s": limits.body_timeout_s + 30}
        ray_serve.start(http_options=http)
        app = build_app(checkpoint, large, token=token, runtime=runtime, full_runtime=full_runtime, limits=limits,
                        options=options)  # fmt: skip
        ray_serve.run(app, name="edgefer", route_prefix="/")
        log.info("serving %s on Ray Serve at http://%s:%d (%s)", checkpoint, host, port, options)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        ray_serve.shutdown()
        ray.shutdown()
