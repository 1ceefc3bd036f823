"""The edge runtime: run a face through the model locally, split with the cloud, in the cloud, or auto.

Strategies:

* ``edge``: everything on the device.
* ``split`` (the paper's): the head (conv1..Stage2) on the device, the Stage2 map to the cloud's
  ``split-stage2`` model (the attention modules), the map back, the tail (Stage3..FC) on the device.
* ``cloud``: the face to the cloud's ``full`` model as raw grayscale pixels, PNG or JPEG
  (``image_format``); logits back.
* ``auto``: per request, the plan with the lowest predicted latency (:mod:`edgefer.edge.planner`):
  any of the above, or a split after any stage where the cloud returns logits. Predictions use the
  device's per-stage compute (measured on the first face), the cloud's reported compute, the
  encoded sizes, and a live link estimate (:mod:`edgefer.edge.estimator`) fed by every request and
  by a probe every ``probe_every`` local requests.

Every prediction carries a breakdown: edge compute, encode, upload, cloud compute (as the server
reports it), download, decode, edge tail, and bytes each way (as sent: after compression).
"Upload" is the time from sending the request until the response headers arrive, less the
server's compute: request transfer, queueing and round trip. "Download" is reading the response body.

``slowdown`` emulates a slower device: each edge-side step (preparing the face, running layers,
encoding and decoding) is measured and padded with a sleep to ``slowdown`` x its time.

When the cloud is unreachable, times out, or answers 5xx, the request is finished locally and
flagged ``fallback``; each request is answered exactly once. After a failure the cloud is not
tried again until a backoff (0.5 s, doubling to 30 s) has passed; one success resets it. A 4xx
answer means the request or the configuration is wrong (bad token, wrong model) and is raised.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from ..data.transforms import Preprocess, center, resize_once
from ..models import FERNet
from ..pretrained import load_pretrained
from ..serving.codec import CODECS, decode_feature, encode_feature
from ..serving.images import encode_image
from ..serving.protocol import (
    HEADER_LENGTH,
    Message,
    TensorData,
    compress,
    decode_message,
    decompress,
    encode_message,
)
from ..train.checkpoint import preprocess_of
from .estimator import LinkEstimator
from .planner import Plan, Planner, Profile

__all__ = ["STRATEGIES", "Breakdown", "CloudError", "EdgeRunner", "Prediction"]

STRATEGIES = ("edge", "split", "cloud")  # the fixed ones; "auto" chooses among plans per request
FIXED_PLANS = {"edge": Plan("edge"), "split": Plan("split", "stage2", "feature"), "cloud": Plan("cloud")}
MAX_RESPONSE = 64 * 1024 * 1024


class CloudError(RuntimeError):
    """The cloud refused the request (4xx): a bug or a misconfiguration, not an outage."""


@dataclass
class Breakdown:
    strategy: str
    plan: str = ""
    edge_ms: float = 0.0
    encode_ms: float = 0.0
    upload_ms: float = 0.0
    cloud_ms: float = 0.0
    download_ms: float = 0.0
    decode_ms: float = 0.0
    tail_ms: float = 0.0
    bytes_up: int = 0
    bytes_down: int = 0
    total_ms: float = 0.0
    fallback: bool = False
    error: str | None = None  # why the cloud was not used, when it fell back

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Prediction:
    label: str
    scores: dict[str, float]
    logits: np.ndarray = field(repr=False)
    breakdown: Breakdown

    @property
    def fallback(self) -> bool:
        return self.breakdown.fallback


class _CloudDown(Exception):
    pass


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000


class EdgeRunner:
    """Predict expressions of grayscale face crops with a strategy: edge, split, cloud or auto.

    Args:
        model_or_checkpoint: a checkpoint folder, ``"default"``, or ``(FERNet, metadata)``.
        strategy: ``edge``, ``split``, ``cloud`` or ``auto``.
        cloud_url: the server, e.g. ``http://127.0.0.1:8000`` (needed unless ``edge``).
        token: bearer token, if the server wants one.
        codec: how feature maps travel (``fp32``, ``fp16``, ``int8``). Default ``int8`` with
            ``zstd``: the fewest bytes (8 KB a request at 96 px) among the codecs that lose <= 0.3 pt
            of PublicTest accuracy (measured: +0.11 pt; docs/RESULTS.md).
        compression: ``Content-Encoding`` of requests and the ``Accept-Encoding`` of responses
            (``zstd``, ``gzip``) or None.
        image_format: how the ``cloud`` strategy sends the face: ``raw`` pixels, ``png`` (default:
            lossless, 23% smaller than raw) or ``jpeg`` (smaller still, but -0.53 pt accuracy).
        timeout: seconds for connecting and for the whole response.
        slowdown: emulate a device this many times slower than this machine (edge-side steps only).
        plans: for ``auto``, the candidate plans (default: edge, cloud, the paper's split, and a
            logits-returning split after every stage).
        probe_every: for ``auto``, after this many requests without the cloud, send one through the
            best cloud plan anyway, to keep the link estimate fresh.
        runtime: ``torch`` (a checkpoint), or ``onnxruntime`` / ``openvino`` with an ``edgefer export``
            folder as the model (for ``split``, one exported with ``--split after=stage2``).
        threads: CPU threads of the ONNX Runtime / OpenVINO model.
    """

    def __init__(
        self,
        model_or_checkpoint: str | Path | tuple[FERNet, dict[str, Any]] = "default",
        strategy: str = "edge",
        cloud_url: str | None = None,
        token: str | None = None,
        codec: str = "int8",
        compression: str | None = "zstd",
        image_format: str = "png",
        timeout: float = 2.0,
        max_backoff: float = 30.0,
        slowdown: float = 1.0,
        plans: list[Plan] | None = None,
        probe_every: int = 20,
        runtime: str = "torch",
        threads: int | None = None,
    ) -> None:
        if strategy not in (*STRATEGIES, "auto"):
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {(*STRATEGIES, 'auto')}")
        if strategy != "edge" and not cloud_url:
            raise ValueError(f"strategy {strategy!r} needs a cloud_url")
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
        if image_format not in ("raw", "png", "jpeg"):
            raise ValueError(f"unknown image format {image_format!r}; expected raw, png or jpeg")
        if slowdown < 1.0:
            raise ValueError(f"slowdown must be >= 1 (this machine is the fastest device), got {slowdown}")
        self.runtime = runtime
        if isinstance(model_or_checkpoint, tuple):
            self.net, self.meta = model_or_checkpoint
        elif runtime != "torch":
            self._load_export(model_or_checkpoint, runtime, threads, strategy)
        else:
            self.net, self.meta = load_pretrained(model_or_checkpoint)
        self.net.eval()
        self.pre: Preprocess = preprocess_of(self.meta)
        self.classes: list[str] = list(self.meta["classes"])
        if runtime == "torch":
            self.stages: list[str] = list(self.net.stage_names)
            self.head, self.cloud_part, self.tail = self.net.split(after="stage2")
        self.strategy, self.codec, self.compression = strategy, codec, compression
        self.image_format = image_format
        self.slowdown = slowdown
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = (
            httpx.Client(base_url=cloud_url, headers=headers, timeout=httpx.Timeout(timeout, connect=timeout))
            if cloud_url
            else None
        )
        self.max_backoff = max_backoff
        self._backoff = 0.0
        self._retry_at = 0.0
        self.link = LinkEstimator()
        self.planner: Planner | None = None
        self._candidates = plans
        self.probe_every = probe_every
        self._local_streak = 0

    def _load_export(self, folder: str | Path, runtime: str, threads: int | None, strategy: str) -> None:
        """The device's model from an ``edgefer export`` folder, run by ONNX Runtime or OpenVINO."""
        from ..export import ExportedNet, load_export

        runners, self.meta = load_export(folder, runtime, threads)
        self.net = ExportedNet(runners)
        self.stages = []
        if strategy == "auto":
            raise ValueError("strategy 'auto' needs a PyTorch checkpoint (it times and splits every stage)")
        if strategy == "split":
            if self.meta.get("split_after") != "stage2":
                raise ValueError(f"strategy 'split' needs an export split after stage2; {folder} is not")
            self.head, self.cloud_part, self.tail = (
                ExportedNet({k: runners[k]}) for k in ("edge_head", "cloud", "edge_tail")
            )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> EdgeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the device ----------------------------------------------------------------------------------

    def _pad(self, start: float) -> float:
        """Milliseconds since ``start``, padded (by sleeping) to ``slowdown`` x that."""
        elapsed = time.perf_counter() - start
        if self.slowdown > 1.0:
            time.sleep(elapsed * (self.slowdown - 1.0))
        return _ms(start)

    def _prepare(self, face: np.ndarray) -> torch.Tensor:
        face = np.asarray(face)
        if face.ndim != 2 or face.dtype != np.uint8:
            raise ValueError(f"expected a grayscale uint8 face (H, W), got {face.dtype} {face.shape}")
        return center(resize_once(face[None], self.pre.resize), self.pre)

    def _run(self, x: torch.Tensor, first: int, last: int) -> torch.Tensor:
        """Stages ``first`` .. ``last`` (indices into ``self.stages``, inclusive)."""
        for name in self.stages[first : last + 1]:
            x = self.net._modules[name](x)
        return x

    # -- the cloud -------------------------------------------------------------------------------

    def _post(self, model: str, tensor: TensorData, parameters: dict[str, Any], b: Breakdown) -> Message:
        if time.monotonic() < self._retry_at:
            raise _CloudDown(f"cloud marked down; next try in {self._retry_at - time.monotonic():.1f} s")
        start = time.perf_counter()
        body, headers = encode_message(
            Message([tensor], parameters={"binary_data_output": True, **parameters}), kind="inputs"
        )
        if self.compression:
            body, headers["Content-Encoding"] = compress(body, self.compression), self.compression
        headers["Accept-Encoding"] = self.compression or "identity"
        b.encode_ms += self._pad(start)
        b.bytes_up = len(body)
        sent = time.perf_counter()
        try:
            request = self.client.build_request("POST", f"/v2/models/{model}/infer", content=body, headers=headers)
            response = self.client.send(request, stream=True)
            headers_at = time.perf_counter()
            try:
                raw = b"".join(response.iter_raw())  # as sent: the bytes on the wire, still compressed
            finally:
                response.close()
        except httpx.TransportError as exc:
            self._mark_down()
            raise _CloudDown(f"{type(exc).__name__}: {exc}") from None
        b.download_ms = _ms(headers_at)
        b.bytes_down = len(raw)
        if response.status_code >= 500 or response.status_code in (408, 429):
            self._mark_down()
            raise _CloudDown(f"HTTP {response.status_code}: {raw[:200]!r}")
        start = time.perf_counter()
        payload = decompress(raw, response.headers.get("content-encoding"), MAX_RESPONSE)
        if response.status_code >= 400:
            raise CloudError(f"the cloud refused the request (HTTP {response.status_code}): {payload[:500]!r}")
        message = decode_message(payload, response.headers.get(HEADER_LENGTH), kind="outputs")
        b.decode_ms += self._pad(start)
        b.cloud_ms = float(message.parameters.get("compute_ms", 0.0))
        b.upload_ms = max((headers_at - sent) * 1000 - b.cloud_ms, 0.0)
        self._backoff = 0.0  # the cloud answered
        self.link.observe(b.bytes_up, b.bytes_down, b.upload_ms + b.download_ms)
        if self.planner is not None:
            self.planner.observe_cloud(model, b.cloud_ms)
        return message

    def _mark_down(self) -> None:
        self._backoff = min(max(self._backoff * 2, 0.5), self.max_backoff)
        self._retry_at = time.monotonic() + self._backoff

    @property
    def cloud_available(self) -> bool:
        return self.client is not None and time.monotonic() >= self._retry_at

    def probe_rtt(self, tries: int = 2) -> float | None:
        """Time a tiny request (the server's readiness) and feed it to the link estimate.

        The quickest of ``tries`` counts: the first may include opening the connection."""
        if not self.cloud_available:
            return None
        times = []
        for _ in range(tries):
            start = time.perf_counter()
            try:
                self.client.get("/v2/health/ready")
            except httpx.TransportError:
                self._mark_down()
                return None
            times.append(_ms(start))
        self.link.observe_rtt(min(times))
        return min(times)

    # -- predictions -----------------------------------------------------------------------------

    def predict(self, face: np.ndarray) -> Prediction:
        """The expression of one grayscale uint8 face crop (H, W)."""
        began = time.perf_counter()  # choosing (and any probe) counts towards the request's latency
        plan = FIXED_PLANS.get(self.strategy) or self._choose(face)
        link = self.link.estimate() if self.strategy == "auto" and self.link.ready else None
        b = Breakdown(self.strategy, plan.name)
        executed = time.perf_counter()
        with torch.inference_mode():
            logits = self._execute(plan, face, b)
        b.total_ms = _ms(began)
        if self.planner is not None and not b.fallback:
            self.planner.observe_total(plan, link, _ms(executed))
            self.planner.observe_edge(plan, b.edge_ms + b.tail_ms)
            if plan.kind != "edge":
                self.planner.observe_sizes(plan, b.bytes_up, b.bytes_down)
        probs = torch.softmax(torch.from_numpy(logits[0]), 0).numpy()
        scores = {name: float(p) for name, p in zip(self.classes, probs, strict=True)}
        return Prediction(self.classes[int(probs.argmax())], scores, logits[0], b)

    def _execute(self, plan: Plan, face: np.ndarray, b: Breakdown) -> np.ndarray:
        if plan.kind == "edge":
            start = time.perf_counter()
            logits = self.net(self._prepare(face)).numpy()
            b.edge_ms = self._pad(start)
            return logits
        if plan.kind == "cloud":
            return self._predict_cloud(face, b)
        if plan.returns == "feature":
            return self._predict_split(face, b)
        return self._predict_suffix(plan.after, face, b)

    def _predict_split(self, face: np.ndarray, b: Breakdown) -> np.ndarray:
        start = time.perf_counter()
        feature = self.head(self._prepare(face))
        b.edge_ms = self._pad(start)
        try:
            start = time.perf_counter()
            tensor = encode_feature("feature", feature.numpy(), self.codec)
            b.encode_ms = self._pad(start)
            message = self._post("split-stage2", tensor, {"codec": self.codec}, b)
            start = time.perf_counter()
            attended = torch.from_numpy(decode_feature(message.tensor("feature")))
            b.decode_ms += self._pad(start)
        except _CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            start = time.perf_counter()
            attended = self.cloud_part(feature)
            b.edge_ms += self._pad(start)
        start = time.perf_counter()
        logits = self.tail(attended).numpy()
        b.tail_ms = self._pad(start)
        return logits

    def _predict_suffix(self, after: str, face: np.ndarray, b: Breakdown) -> np.ndarray:
        cut = self.stages.index(after)
        start = time.perf_counter()
        feature = self._run(self._prepare(face), 0, cut)
        b.edge_ms = self._pad(start)
        try:
            start = time.perf_counter()
            tensor = encode_feature("feature", feature.numpy(), self.codec)
            b.encode_ms = self._pad(start)
            message = self._post(f"suffix-{after}", tensor, {"codec": self.codec}, b)
            return message.tensor("logits").data.astype(np.float32)
        except _CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            start = time.perf_counter()
            logits = self._run(feature, cut + 1, len(self.stages) - 1).numpy()
            b.tail_ms = self._pad(start)
            return logits

    def _predict_cloud(self, face: np.ndarray, b: Breakdown) -> np.ndarray:
        start = time.perf_counter()
        if self.image_format == "raw":
            image = np.ascontiguousarray(np.asarray(face, dtype=np.uint8)[None])
        else:
            image = np.empty(1, dtype=object)
            image[0] = encode_image(face, self.image_format)
        b.encode_ms = self._pad(start)
        try:
            message = self._post("full", TensorData("image", image), {}, b)
            return message.tensor("logits").data.astype(np.float32)
        except _CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            start = time.perf_counter()
            logits = self.net(self._prepare(face)).numpy()
            b.edge_ms = self._pad(start)
            return logits

    # -- auto ------------------------------------------------------------------------------------

    def _choose(self, face: np.ndarray) -> Plan:
        if self.planner is None:
            self.planner = Planner(self.profile(face), self._candidates)
        if not self.cloud_available:
            return Plan("edge")
        if not self.link.ready:
            self.probe_rtt()
            if not self.cloud_available:
                return Plan("edge")
            # No rate known yet: this request measures it, through a split (the paper's, where there is one).
            splits = [p for p in self.planner.plans if p.kind == "split"]
            return FIXED_PLANS["split"] if FIXED_PLANS["split"] in splits else splits[len(splits) // 2]
        plan = self.planner.choose(self.link.estimate())
        if plan.kind == "edge":
            self._local_streak += 1
            if self._local_streak >= self.probe_every:  # an occasional probe keeps the estimate fresh
                self._local_streak = 0
                self.probe_rtt()
                cloud_plans = [p for p in self.planner.plans if p.kind != "edge"]
                if cloud_plans and self.cloud_available:
                    return min(cloud_plans, key=lambda p: self.planner.predict(p, self.link.estimate()))
        else:
            self._local_streak = 0
        return plan

    def profile(self, face: np.ndarray, repeats: int = 5) -> Profile:
        """Measure the device's compute per stage (with its slowdown) and every plan's request and
        response sizes on one face; the cloud's compute starts as this machine's, unslowed."""
        with torch.inference_mode():
            prepare, per_stage = [], {name: [] for name in self.stages}
            features: dict[str, torch.Tensor] = {}
            for _ in range(repeats):
                start = time.perf_counter()
                x = self._prepare(face)
                prepare.append(_ms(start))
                for name in self.stages:
                    start = time.perf_counter()
                    x = self.net._modules[name](x)
                    per_stage[name].append(_ms(start))
                    features[name] = x
        local = {name: statistics.median(v) for name, v in per_stage.items()}
        prep = statistics.median(prepare)
        edge = {name: ms * self.slowdown for name, ms in local.items()}
        cloud = {"full": prep + sum(local.values())}
        sizes: dict[str, tuple[int, int]] = {}
        encode: dict[str, float] = {}
        logits_bytes = self._body_size(TensorData("logits", features[self.stages[-1]].numpy()), "outputs")
        image = np.empty(1, dtype=object)
        image[0] = encode_image(face, self.image_format) if self.image_format != "raw" else face.tobytes()
        sizes["cloud"] = (self._body_size(TensorData("image", image), "inputs"), logits_bytes)
        for i, name in enumerate(self.stages[:-1]):
            start = time.perf_counter()
            up = self._body_size(encode_feature("feature", features[name].numpy(), self.codec), "inputs")
            encode[f"split@{name}:logits"] = _ms(start) * self.slowdown
            sizes[f"split@{name}:logits"] = (up, logits_bytes)
            cloud[f"suffix-{name}"] = sum(local[s] for s in self.stages[i + 1 :])
        if {"stage2", "attention"} <= set(self.stages) and self.stages.index("attention") == self.stages.index(
            "stage2"
        ) + 1:
            name = "split@stage2:feature"
            start = time.perf_counter()
            down = self._body_size(encode_feature("feature", features["attention"].numpy(), self.codec), "outputs")
            encode[name] = encode["split@stage2:logits"] + _ms(start) * self.slowdown
            sizes[name] = (sizes["split@stage2:logits"][0], down)
            cloud["split-stage2"] = local["attention"]
        return Profile(self.stages, edge, prep * self.slowdown, cloud, sizes, encode)

    def _body_size(self, tensor: TensorData, kind: str) -> int:
        body, _ = encode_message(Message([tensor], parameters={"binary_data_output": True}), kind=kind)
        return len(compress(body, self.compression)) if self.compression else len(body)
