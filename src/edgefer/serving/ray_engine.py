"""The cloud tier on Ray Serve: the same Open Inference Protocol app, with its models as Ray deployments.

``edgefer serve --engine ray`` (or ``serve run`` / ``serve deploy`` with ``ray_serve.yaml``) deploys:

* ``Models``: the models of a checkpoint (``full``, ``split-stage2``, ``suffix-*``), or, for the
  larger model, ``full-large`` alone. Each replica loads its model once and answers through one
  ``@serve.batch`` method: concurrent requests (from any ingress replica) share forward passes,
  grouped by model and sample shape, exactly as the single-process server's dynamic batcher groups
  them. Replicas (``--replicas N``) or autoscaling (``--autoscale MIN:MAX``) are per deployment.
* ``Ingress``: the single-process server's Starlette app (:func:`edgefer.serving.app.create_app`),
  unchanged: routes, bearer token, compression, typed 4xx, the body/sample/image/header limits of
  :class:`~edgefer.serving.limits.ServerLimits`. Only its batchers differ: they call the ``Models``
  deployments through their handles. Requests are validated (and images decoded) on the ingress, so
  a hostile request never reaches a model replica.

What does not carry over: the connection-level limits (header deadline, keep-alive, connection
count) belong to the HTTP server, which here is Ray's proxy; ``request_timeout_s`` bounds a whole
request there instead. A replica that dies is replaced by Ray's controller; requests it held fail
and the edge retries them (``CloudClient``) or answers on the device.

Everything that imports Ray is in this module; the single-process server does not need it
(``pip install "edgefer[ray]"``).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ray import serve

from ..loading import load_model
from ..wire.errors import ServiceUnavailable
from ..wire.names import FULL_LARGE
from .app import create_app
from .batching import BatchResult
from .dataplane import DataPlane, ServedModel, full_model, served_models
from .limits import ServerLimits

__all__ = ["RayOptions", "build_app", "deployment_options", "patient_proxy"]

# Ray Serve kills its HTTP proxy when it is not ready within 5 s, and serve.start() then fails; on a
# loaded 2-core machine the first start took longer (a fresh clone's test run, training beside it).
PROXY_PATIENCE = {"RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30"}


def patient_proxy() -> None:
    """Give a local Ray instance's proxy time to start under load; call before ``ray.init``. Values
    already in the environment (a cluster's own settings) win."""
    for name, value in PROXY_PATIENCE.items():
        os.environ.setdefault(name, value)


@dataclass(frozen=True)
class RayOptions:
    """How the deployments scale; ``autoscale`` (MIN, MAX) replaces a fixed replica count."""

    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    max_batch_size: int = 8
    batch_wait_ms: float = 2.0
    threads: int = 1  # PyTorch intra-op threads per replica

    @classmethod
    def parse_autoscale(cls, text: str | None) -> tuple[int, int] | None:
        if not text:
            return None
        low, _, high = text.partition(":")
        if not (low.isdigit() and high.isdigit()) or not 1 <= int(low) <= int(high):
            raise ValueError(f"--autoscale takes MIN:MAX with 1 <= MIN <= MAX, got {text!r}")
        return int(low), int(high)


def deployment_options(options: RayOptions) -> dict[str, Any]:
    """Replicas (fixed or autoscaled) and how many requests a replica takes at once: Ray Serve's default
    of 5 would keep a batch from filling and queue the rest in the router, which backs off and
    retries (measured: 32 clients got 8 req/s at a 4 s median); a batching replica takes four batches."""
    concurrency = {"max_ongoing_requests": 4 * options.max_batch_size}
    if options.autoscale is None:
        return {"num_replicas": options.replicas, **concurrency}
    low, high = options.autoscale
    scaling = {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": options.max_batch_size}
    return {"num_replicas": "auto", "autoscaling_config": scaling, **concurrency}


@serve.deployment(ray_actor_options={"num_cpus": 0})
class Models:
    """One checkpoint's served models (or ``full-large`` alone), behind one batching method."""

    def __init__(self, source: str, kind: str, runtime: str, full_runtime: str, options: dict) -> None:
        import torch

        opts = RayOptions(**options)
        torch.set_num_threads(opts.threads)
        model = load_model(source, runtime)
        full = model if full_runtime in ("auto", model.runtime) else _or_model(source, full_runtime, model)
        if kind == "large":
            self.models = {FULL_LARGE: full_model(FULL_LARGE, full)}
        else:
            self.models = served_models(model, full=full)
        self.infer.set_max_batch_size(opts.max_batch_size)
        self.infer.set_batch_wait_timeout_s(opts.batch_wait_ms / 1000)

    def describe(self) -> list[dict[str, Any]]:
        return [m.describe() for m in self.models.values()]

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.002)
    async def infer(self, requests: list[tuple[str, np.ndarray]]) -> list[tuple[np.ndarray, float, int]]:
        """One forward pass per model and sample shape among the requests; each gets its own rows back."""
        out: list[Any] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, (name, x) in enumerate(requests):
            key = (name, x.dtype.str, x.shape[1:] if x.dtype != object else ())
            groups.setdefault(key, []).append(i)
        for (name, _, _), members in groups.items():
            batch = np.concatenate([requests[i][1] for i in members])
            start = time.perf_counter()
            y = await asyncio.to_thread(self.models[name].run, batch)
            ms = (time.perf_counter() - start) * 1000
            offset = 0
            for i in members:
                n = len(requests[i][1])
                out[i] = (np.asarray(y[offset : offset + n]), ms, len(batch))
                offset += n
        return out


def _or_model(source: str, runtime: str, fallback):
    try:
        return load_model(source, runtime)
    except Exception:
        return fallback


class _RemoteBatcher:
    """The DataPlane's batcher on the ingress: every request goes to the ``Models`` deployment."""

    def __init__(self, handle, name: str) -> None:
        self.handle, self.name = handle, name
        self.forward_passes = self.requests = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def submit(self, x: np.ndarray) -> BatchResult:
        from ray.exceptions import RayActorError, RaySystemError
        from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError

        self.requests += 1
        try:
            output, ms, size = await self.handle.infer.remote((self.name, x))
        except (RayActorError, RaySystemError, BackPressureError, DeploymentUnavailableError) as exc:
            raise ServiceUnavailable(f"{self.name}: no replica could answer ({type(exc).__name__}); retry") from None
        return BatchResult(output, ms, size)


@serve.deployment(ray_actor_options={"num_cpus": 0})
@serve.ingress()
class Ingress:
    """The Open Inference Protocol app; its models live in the ``Models`` deployments."""

    async def __init__(self, models, large, token: str | None, limits: dict) -> None:
        self.handles = {"models": models, "large": large}
        self.token, self.limits = token, ServerLimits(**limits)
        self.served: dict[str, ServedModel] = {}
        self.route: dict[str, Any] = {}
        for handle in self.handles.values():
            if handle is None:
                continue
            for description in await handle.describe.remote():
                self.served[description["name"]] = ServedModel(run=None, **description)
                self.route[description["name"]] = handle

    def __serve_build_asgi_app__(self):
        def batcher(model: ServedModel) -> _RemoteBatcher:
            return _RemoteBatcher(self.route[model.name], model.name)

        plane = DataPlane(self.served, limits=self.limits, batcher=batcher)
        return create_app(plane, token=self.token)


def build_app(
    checkpoint: str = "default",
    large: str | None = "default-large",
    *,
    token: str | None = None,
    runtime: str = "auto",
    full_runtime: str = "onnxruntime",
    limits: ServerLimits | None = None,
    options: RayOptions | None = None,
):
    """The Ray Serve application (an ingress and one or two model deployments)."""
    from ..loading import NAMED

    options = options or RayOptions()
    scale = deployment_options(options)
    if large in NAMED and not (NAMED[large] / "model.json").is_file():
        large = None  # this installation ships no larger model
    models = Models.options(name="models", **scale).bind(checkpoint, "main", runtime, full_runtime, asdict(options))
    large_deployment = None
    if large:
        large_options = Models.options(name="large", **scale)
        large_deployment = large_options.bind(large, "large", runtime, full_runtime, asdict(options))
    limits = limits or ServerLimits()
    # the ingress is async and only parses and forwards: it takes as many requests as the server allows
    ingress = Ingress.options(max_ongoing_requests=limits.max_connections)
    return ingress.bind(models, large_deployment, token, asdict(limits))


def app_builder(args: dict[str, Any]):
    """``serve run edgefer.serving.ray_engine:app_builder checkpoint=default ...`` and ``ray_serve.yaml``."""
    options = RayOptions(
        replicas=int(args.get("replicas", 1)),
        autoscale=RayOptions.parse_autoscale(args.get("autoscale")),
        max_batch_size=int(args.get("max_batch_size", 8)),
        batch_wait_ms=float(args.get("batch_wait_ms", 2.0)),
        threads=int(args.get("threads", 1)),
    )
    large = args.get("large", "default-large")
    return build_app(
        args.get("checkpoint", "default"),
        None if large in (None, "", "none") else large,
        token=args.get("token"),
        runtime=args.get("runtime", "auto"),
        full_runtime=args.get("full_runtime", "onnxruntime"),
        options=options,
    )
