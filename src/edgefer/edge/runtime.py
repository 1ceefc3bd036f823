"""The edge runtime: run a face through the model locally, split with the cloud, in the cloud, auto or escalate.

Strategies (:data:`edgefer.edge.planner.STRATEGIES`):

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
* ``escalate``: the device model answers; when its confidence (:mod:`edgefer.escalation`) is below
  a threshold, the face goes to the cloud's larger model (``full-large``) and its answer is used.
  With the cloud down, the device's answer stands, flagged ``fallback``. The only route to the
  larger model is the face itself (its layers are not on the device), so ``auto``'s choice of a
  split does not apply to it; the face travels as ``image_format`` (PNG: lossless, the fewest bytes).

The fixed strategies are fixed plans, run by the same code as the plans ``auto`` chooses. Every
prediction carries a :class:`~edgefer.edge.results.Breakdown`: edge compute, encode, upload, cloud
compute (as the server reports it), download, decode, edge tail, and bytes each way as sent.

``slowdown`` emulates a slower device (:class:`~edgefer.edge.device.Device`): each edge-side step
(preparing the face, running layers, encoding and decoding) is measured and padded to ``slowdown`` x
its time.

When the cloud is unreachable, times out or answers 5xx, the request is finished locally and
flagged ``fallback``; each request is answered exactly once. The connection and its recovery are
the :class:`~edgefer.edge.client.CloudClient`'s. A 4xx answer means the request or the
configuration is wrong (bad token, wrong model) and is raised as :class:`CloudError`.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.transforms import center, resize_once
from ..escalation import MEASURES, confidence, threshold_for_rate
from ..loading import LoadedModel, load_model
from ..wire import CODECS, FULL_LARGE, TensorData, decode_feature, encode_feature, encode_image
from .client import CloudClient, CloudDown, CloudError
from .device import Device
from .estimator import LinkEstimator
from .planner import FIXED_PLANS, STRATEGIES, Plan, Planner, Profile
from .results import Breakdown, Prediction

__all__ = ["STRATEGIES", "Breakdown", "CloudError", "EdgeRunner", "Prediction"]

IMAGE_FORMATS = ("raw", "png", "jpeg")


class EdgeRunner:
    """Predict expressions of grayscale face crops with a strategy: edge, split, cloud, auto or escalate.

    Args:
        model: a :class:`LoadedModel`, a checkpoint or export folder, or ``"default"``.
        strategy: one of :data:`STRATEGIES`.
        cloud_url: the server, e.g. ``http://127.0.0.1:8000`` (needed unless ``edge``).
        token: bearer token, if the server wants one.
        codec: how feature maps travel (``fp32``, ``fp16``, ``int8``). Default ``int8`` with
            ``zstd``: the fewest bytes (8 KB a request at 96 px) among the codecs that lose <= 0.3 pt
            of PublicTest accuracy (measured: +0.11 pt; docs/RESULTS.md).
        compression: ``Content-Encoding`` of requests and the ``Accept-Encoding`` of responses
            (``zstd``, ``gzip``) or None.
        image_format: how a face travels to the cloud: ``raw`` pixels, ``png`` (default: lossless,
            23% smaller than raw) or ``jpeg`` (smaller still, but loses accuracy).
        timeout: seconds for connecting and for the whole response.
        probe_interval: seconds between readiness probes while the cloud is down.
        slowdown: emulate a device this many times slower than this machine (edge-side steps only).
        plans: for ``auto``, the candidate plans (default: edge, cloud, the paper's split, and a
            logits-returning split after every stage).
        probe_every: for ``auto``, after this many requests without the cloud, send one through the
            best cloud plan anyway, to keep the link estimate fresh.
        escalate_threshold: for ``escalate``, the confidence under which a face is escalated; or
        escalate_rate: the share of faces to escalate, turned into a threshold with the model's
            stored calibration (``escalation`` in its metadata).
        confidence_measure: ``max``, ``margin`` or ``entropy`` (default: the calibration's, else margin).
        runtime: ``auto`` (what ``model`` holds), ``torch``, ``onnxruntime`` or ``openvino``.
        threads: CPU threads of an ONNX Runtime / OpenVINO model.
        device: the device emulation (default: ``Device(slowdown)``).
    """

    def __init__(
        self,
        model: str | Path | LoadedModel = "default",
        *,
        strategy: str = "edge",
        cloud_url: str | None = None,
        token: str | None = None,
        codec: str = "int8",
        compression: str | None = "zstd",
        image_format: str = "png",
        timeout: float = 2.0,
        probe_interval: float = 0.5,
        slowdown: float = 1.0,
        plans: list[Plan] | None = None,
        probe_every: int = 20,
        escalate_threshold: float | None = None,
        escalate_rate: float | None = None,
        confidence_measure: str | None = None,
        runtime: str = "auto",
        threads: int | None = None,
        device: Device | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
        if strategy != "edge" and not cloud_url:
            raise ValueError(f"strategy {strategy!r} needs a cloud_url")
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"unknown image format {image_format!r}; expected one of {IMAGE_FORMATS}")
        self.model = model if isinstance(model, LoadedModel) else load_model(model, runtime, threads)
        self.pre = self.model.preprocess
        self.classes = self.model.classes
        self.stages = self.model.stage_names
        if strategy == "auto" and not self.model.stagewise:
            raise ValueError("strategy 'auto' needs a PyTorch checkpoint (it times and splits every stage)")
        self._splits: dict[str, tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]] = {}
        if strategy == "split":
            self._split(FIXED_PLANS["split"].after)  # refuses a model that cannot be split there
        self.strategy, self.codec, self.image_format = strategy, codec, image_format
        self.device = device or Device(slowdown)
        self.slowdown = self.device.slowdown
        self.link = LinkEstimator()
        self.client = (
            CloudClient(
                cloud_url,
                token=token,
                compression=compression,
                timeout=timeout,
                probe_interval=probe_interval,
                device=self.device,
                link=self.link,
            )
            if cloud_url
            else None
        )
        self.planner: Planner | None = None
        self._candidates = plans
        self.probe_every = probe_every
        self._local_streak = 0
        self.measure, self.threshold = self._escalation(escalate_threshold, escalate_rate, confidence_measure)

    def _escalation(self, threshold: float | None, rate: float | None, measure: str | None) -> tuple[str, float | None]:
        calibration = self.model.meta.extra.get("escalation")
        measure = measure or (calibration or {}).get("measure", "margin")
        if measure not in MEASURES:
            raise ValueError(f"unknown confidence measure {measure!r}; expected one of {MEASURES}")
        if self.strategy != "escalate":
            return measure, None
        if (threshold is None) == (rate is None):
            raise ValueError("strategy 'escalate' needs exactly one of escalate_threshold and escalate_rate")
        if threshold is not None:
            return measure, float(threshold)
        if not calibration or calibration.get("measure") != measure:
            raise ValueError(
                f"{self.model.meta.source} has no stored {measure} calibration for an escalation rate; "
                "pass a threshold, or calibrate it (edgefer evaluate --escalate ... --calibrate)"
            )
        return measure, threshold_for_rate(calibration, rate)

    @property
    def net(self) -> torch.nn.Module:
        return self.model.net

    @property
    def cloud_available(self) -> bool:
        return self.client is not None and self.client.available

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> EdgeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the device ----------------------------------------------------------------------------------

    def _prepare(self, faces: np.ndarray) -> Tensor:
        """uint8 faces (H, W) or (N, H, W) -> the model's input batch."""
        faces = np.asarray(faces)
        if faces.ndim == 2:
            faces = faces[None]
        if faces.ndim != 3 or faces.dtype != np.uint8:
            raise ValueError(f"expected grayscale uint8 faces (H, W) or (N, H, W), got {faces.dtype} {faces.shape}")
        if len({f.shape for f in faces}) > 1:
            raise ValueError("faces of one batch must have one size")
        return center(resize_once(faces, self.pre.resize), self.pre)

    def _split(self, after: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
        """(head, attention, tail) around the attention after ``after``, cut once and kept."""
        if after not in self._splits:
            self._splits[after] = self.model.split(after=after)
        return self._splits[after]

    def _local(self, x: Tensor, b: Breakdown, into: str = "edge_ms") -> Tensor:
        start = self.device.now()
        logits = self.model(x)
        setattr(b, into, getattr(b, into) + self.device.pad(start))
        return logits

    # -- the cloud -------------------------------------------------------------------------------

    def _offload(self, model: str, tensor: TensorData, parameters: dict, b: Breakdown) -> TensorData | None:
        """The cloud model's output tensor, or None (and ``b`` flagged) when the cloud cannot answer."""
        try:
            reply = self.client.infer(model, tensor, parameters)
        except CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            return None
        b.bytes_up, b.bytes_down = reply.bytes_up, reply.bytes_down
        b.encode_ms += reply.encode_ms
        b.upload_ms, b.cloud_ms, b.download_ms = reply.upload_ms, reply.cloud_ms, reply.download_ms
        b.decode_ms += reply.decode_ms
        if self.planner is not None:
            self.planner.observe_cloud(model, reply.cloud_ms)
        return reply.message.tensors[0]

    def _image_tensor(self, face: np.ndarray, b: Breakdown) -> TensorData:
        start = self.device.now()
        if self.image_format == "raw":
            image = np.ascontiguousarray(np.asarray(face, dtype=np.uint8)[None])
        else:
            image = np.empty(1, dtype=object)
            image[0] = encode_image(face, self.image_format)
        b.encode_ms += self.device.pad(start)
        return TensorData("image", image)

    def _feature(self, x: Tensor, b: Breakdown) -> TensorData:
        start = self.device.now()
        tensor = encode_feature("feature", x.numpy(), self.codec)
        b.encode_ms += self.device.pad(start)
        return tensor

    # -- predictions -----------------------------------------------------------------------------

    def predict(self, face: np.ndarray) -> Prediction:
        """The expression of one grayscale uint8 face crop (H, W)."""
        face = np.asarray(face)
        if face.ndim != 2 or face.dtype != np.uint8:
            raise ValueError(f"expected one grayscale uint8 face (H, W), got {face.dtype} {face.shape}")
        began = self.device.now()  # choosing (and any probe) counts towards the request's latency
        plan = self._choose(face) if self.strategy == "auto" else FIXED_PLANS.get(self.strategy, FIXED_PLANS["edge"])
        link = self.link.estimate() if self.planner is not None and self.link.ready else None
        b = Breakdown(self.strategy, plan.name)
        executed = self.device.now()
        b.plan_ms = (executed - began) * 1000
        with torch.inference_mode():
            logits = self._execute(plan, face, b)
        b.total_ms = self.device.ms_since(began)
        if self.planner is not None and not b.fallback:
            learn = self.device.now()
            self.planner.observe_total(plan, link, b.total_ms - b.plan_ms)
            self.planner.observe_edge(plan, b.edge_ms + b.tail_ms)
            if plan.kind != "edge":
                self.planner.observe_sizes(plan, b.bytes_up, b.bytes_down)
            b.plan_ms += self.device.ms_since(learn)  # after the answer: not in total_ms, but the strategy's cost
        return self._prediction(logits[0], b)

    def predict_batch(self, faces: list[np.ndarray] | np.ndarray) -> list[Prediction]:
        """Several faces; on the device (``edge``) they run as one batch, each gets the batch's time / N."""
        faces = list(faces)
        if self.strategy != "edge" or len(faces) < 2 or len({np.shape(f) for f in faces}) > 1:
            return [self.predict(face) for face in faces]
        start = self.device.now()
        with torch.inference_mode():
            logits = self.model(self._prepare(np.stack(faces))).numpy()
        share = self.device.pad(start) / len(faces)
        return [self._prediction(row, Breakdown("edge", "edge", edge_ms=share, total_ms=share)) for row in logits]

    def _prediction(self, logits: np.ndarray, b: Breakdown) -> Prediction:
        probs = torch.softmax(torch.from_numpy(np.asarray(logits, dtype=np.float32)), 0).numpy()
        scores = {name: float(p) for name, p in zip(self.classes, probs, strict=True)}
        return Prediction(self.classes[int(probs.argmax())], scores, logits, b)

    def _execute(self, plan: Plan, face: np.ndarray, b: Breakdown) -> np.ndarray:
        if plan.kind == "cloud":
            out = self._offload(plan.model, self._image_tensor(face, b), {}, b)
            if out is not None:
                return out.data.astype(np.float32)
        start = self.device.now()
        x = self._prepare(face)
        if plan.kind in ("edge", "cloud"):  # all local (or the cloud's fallback)
            b.edge_ms += self.device.pad(start)
            logits = self._local(x, b).numpy()
            return self._escalate(face, logits, b) if self.strategy == "escalate" else logits
        if plan.returns == "feature":  # the paper's round trip: head here, attention there, tail here
            head, cloud_part, tail = self._split(plan.after)
            feature = head(x)
            b.edge_ms += self.device.pad(start)
            out = self._offload(plan.model, self._feature(feature, b), {"codec": self.codec}, b)
            start = self.device.now()
            if out is None:
                attended = cloud_part(feature)
                b.edge_ms += self.device.pad(start)
                start = self.device.now()
            else:
                attended = torch.from_numpy(decode_feature(out))
                b.decode_ms += self.device.pad(start)
                start = self.device.now()
            logits = tail(attended).numpy()
            b.tail_ms += self.device.pad(start)
            return logits
        cut = self.stages.index(plan.after)  # a split where the cloud finishes
        feature = self.model.run(x, 0, cut)
        b.edge_ms += self.device.pad(start)
        out = self._offload(plan.model, self._feature(feature, b), {"codec": self.codec}, b)
        if out is not None:
            return out.data.astype(np.float32)
        start = self.device.now()
        logits = self.model.run(feature, cut + 1, len(self.stages) - 1).numpy()
        b.tail_ms += self.device.pad(start)
        return logits

    def _escalate(self, face: np.ndarray, logits: np.ndarray, b: Breakdown) -> np.ndarray:
        """The device's answer if it is sure enough, else the cloud's larger model's."""
        b.confidence = float(confidence(logits, self.measure)[0])
        if b.confidence >= self.threshold:
            return logits
        out = self._offload(FULL_LARGE, self._image_tensor(face, b), {}, b)
        if out is None:
            return logits  # flagged fallback: the device's answer stands
        b.escalated = True
        return out.data.astype(np.float32)

    # -- auto ------------------------------------------------------------------------------------

    def probe_rtt(self, tries: int = 2) -> float | None:
        return None if self.client is None else self.client.probe_rtt(tries)

    def _choose(self, face: np.ndarray) -> Plan:
        if self.planner is None:
            self.planner = Planner(self.profile(face), plans=self._candidates)
        if not self.cloud_available:
            return FIXED_PLANS["edge"]
        if not self.link.ready:
            self.probe_rtt()
            if not self.cloud_available:
                return FIXED_PLANS["edge"]
            # No rate known yet: this request measures it, through a split (the paper's, where there is one).
            splits = [p for p in self.planner.plans if p.kind == "split"]
            return FIXED_PLANS["split"] if FIXED_PLANS["split"] in splits else splits[len(splits) // 2]
        link = self.link.estimate()
        plan = self.planner.choose(link)
        if plan.kind == "edge":
            self._local_streak += 1
            if self._local_streak >= self.probe_every:  # an occasional probe keeps the estimate fresh
                self._local_streak = 0
                self.probe_rtt()
                cloud_plans = [p for p in self.planner.plans if p.kind != "edge"]
                if cloud_plans and self.cloud_available:
                    link = self.link.estimate()
                    return min(cloud_plans, key=lambda p: self.planner.predict(p, link))
        else:
            self._local_streak = 0
        return plan

    def profile(self, face: np.ndarray, repeats: int = 5) -> Profile:
        """Measure the device's compute per stage (with its slowdown) and every plan's request and
        response sizes on one face; the cloud's compute starts as this machine's, unslowed."""
        clock = self.device
        with torch.inference_mode():
            prepare, per_stage = [], {name: [] for name in self.stages}
            features: dict[str, Tensor] = {}
            for _ in range(repeats):
                start = clock.now()
                x = self._prepare(face)
                prepare.append(clock.ms_since(start))
                for name in self.stages:
                    start = clock.now()
                    x = self.model.stage(name)(x)
                    per_stage[name].append(clock.ms_since(start))
                    features[name] = x
        local = {name: statistics.median(v) for name, v in per_stage.items()}
        prep = statistics.median(prepare)
        edge = {name: ms * self.slowdown for name, ms in local.items()}
        cloud = {FIXED_PLANS["cloud"].model: prep + sum(local.values())}
        sizes: dict[str, tuple[int, int]] = {}
        encode: dict[str, float] = {}
        size_of = self.client.body_size
        logits_bytes = size_of(TensorData("logits", features[self.stages[-1]].numpy()), "outputs")
        image = np.empty(1, dtype=object)
        image[0] = encode_image(face, self.image_format) if self.image_format != "raw" else face.tobytes()
        sizes["cloud"] = (size_of(TensorData("image", image), "inputs"), logits_bytes)
        for i, name in enumerate(self.stages[:-1]):
            plan = Plan("split", name, "logits")
            start = clock.now()
            up = size_of(encode_feature("feature", features[name].numpy(), self.codec), "inputs")
            encode[plan.name] = clock.ms_since(start) * self.slowdown
            sizes[plan.name] = (up, logits_bytes)
            cloud[plan.model] = sum(local[s] for s in self.stages[i + 1 :])
        paper = FIXED_PLANS["split"]
        attention = self.stages.index(paper.after) + 1 if paper.after in self.stages else None
        if attention is not None and self.stages[attention] == "attention":  # the paper's round trip exists
            start = clock.now()
            down = size_of(encode_feature("feature", features["attention"].numpy(), self.codec), "outputs")
            encode[paper.name] = encode["split@stage2:logits"] + clock.ms_since(start) * self.slowdown
            sizes[paper.name] = (sizes["split@stage2:logits"][0], down)
            cloud[paper.model] = local["attention"]
        return Profile(self.stages, edge, prep * self.slowdown, cloud, sizes, encode)
