"""The edge runtime: run a face through the model locally, split with the cloud, or in the cloud.

Strategies:

* ``edge``: everything on the device.
* ``split`` (the paper's): the head (conv1..Stage2) on the device, the Stage2 map to the cloud's
  ``split-stage2`` model (the attention modules), the map back, the tail (Stage3..FC) on the device.
* ``cloud``: the face to the cloud's ``full`` model as raw grayscale pixels, PNG or JPEG
  (``image_format``); logits back.

Every prediction carries a breakdown: edge compute, encode, upload, cloud compute (as the server
reports it), download, decode, edge tail, and bytes each way. "Upload" is the time from sending
the request until the response headers arrive, less the server's compute: request transfer,
queueing and round trip. "Download" is reading the response body.

When the cloud is unreachable, times out, or answers 5xx, the request is finished locally and
flagged ``fallback``; each request is answered exactly once. After a failure the cloud is not
tried again until a backoff (0.5 s, doubling to 30 s) has passed; one success resets it. A 4xx
answer means the request or the configuration is wrong (bad token, wrong model) and is raised.
"""

from __future__ import annotations

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
from ..serving.protocol import HEADER_LENGTH, Message, TensorData, compress, decode_message, encode_message
from ..train.checkpoint import preprocess_of

__all__ = ["STRATEGIES", "Breakdown", "CloudError", "EdgeRunner", "Prediction"]

STRATEGIES = ("edge", "split", "cloud")


class CloudError(RuntimeError):
    """The cloud refused the request (4xx): a bug or a misconfiguration, not an outage."""


@dataclass
class Breakdown:
    strategy: str
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
    """Predict expressions of grayscale face crops with one of the three strategies.

    Args:
        model_or_checkpoint: a checkpoint folder, ``"default"``, or ``(FERNet, metadata)``.
        strategy: ``edge``, ``split`` or ``cloud``.
        cloud_url: the server, e.g. ``http://127.0.0.1:8000`` (needed unless ``edge``).
        token: bearer token, if the server wants one.
        codec: how the feature map travels (``fp32``, ``fp16``, ``int8``). Default ``int8`` with
            ``zstd``: the fewest bytes (8 KB a request at 96 px) among the codecs that lose <= 0.3 pt
            of PublicTest accuracy (measured: +0.11 pt; docs/RESULTS.md).
        compression: request body ``Content-Encoding`` (``zstd``, ``gzip``) or None.
        image_format: how the ``cloud`` strategy sends the face: ``raw`` pixels, ``png`` (default:
            lossless, 23% smaller than raw) or ``jpeg`` (smaller still, but -0.53 pt accuracy).
        timeout: seconds for connecting and for the whole response.
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
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")
        if strategy != "edge" and not cloud_url:
            raise ValueError(f"strategy {strategy!r} needs a cloud_url")
        if codec not in CODECS:
            raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
        if isinstance(model_or_checkpoint, tuple):
            self.net, self.meta = model_or_checkpoint
        else:
            self.net, self.meta = load_pretrained(model_or_checkpoint)
        self.net.eval()
        self.pre: Preprocess = preprocess_of(self.meta)
        self.classes: list[str] = list(self.meta["classes"])
        self.head, self.cloud_part, self.tail = self.net.split(after="stage2")
        if image_format not in ("raw", "png", "jpeg"):
            raise ValueError(f"unknown image format {image_format!r}; expected raw, png or jpeg")
        self.strategy, self.codec, self.compression = strategy, codec, compression
        self.image_format = image_format
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = (
            httpx.Client(base_url=cloud_url, headers=headers, timeout=httpx.Timeout(timeout, connect=timeout))
            if cloud_url
            else None
        )
        self.max_backoff = max_backoff
        self._backoff = 0.0
        self._retry_at = 0.0

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def __enter__(self) -> EdgeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        headers["Accept-Encoding"] = "identity"
        b.encode_ms += _ms(start)
        b.bytes_up = len(body)
        sent = time.perf_counter()
        try:
            request = self.client.build_request("POST", f"/v2/models/{model}/infer", content=body, headers=headers)
            response = self.client.send(request, stream=True)
            headers_at = time.perf_counter()
            try:
                payload = response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            self._mark_down()
            raise _CloudDown(f"{type(exc).__name__}: {exc}") from None
        b.download_ms = _ms(headers_at)
        b.bytes_down = len(payload)
        if response.status_code >= 500 or response.status_code in (408, 429):
            self._mark_down()
            raise _CloudDown(f"HTTP {response.status_code}: {payload[:200]!r}")
        if response.status_code >= 400:
            raise CloudError(f"the cloud refused the request (HTTP {response.status_code}): {payload[:500]!r}")
        start = time.perf_counter()
        message = decode_message(payload, response.headers.get(HEADER_LENGTH), kind="outputs")
        b.decode_ms += _ms(start)
        b.cloud_ms = float(message.parameters.get("compute_ms", 0.0))
        b.upload_ms = max((headers_at - sent) * 1000 - b.cloud_ms, 0.0)
        self._backoff = 0.0  # the cloud answered
        return message

    def _mark_down(self) -> None:
        self._backoff = min(max(self._backoff * 2, 0.5), self.max_backoff)
        self._retry_at = time.monotonic() + self._backoff

    # -- predictions -----------------------------------------------------------------------------

    def _prepare(self, face: np.ndarray) -> torch.Tensor:
        face = np.asarray(face)
        if face.ndim != 2 or face.dtype != np.uint8:
            raise ValueError(f"expected a grayscale uint8 face (H, W), got {face.dtype} {face.shape}")
        return center(resize_once(face[None], self.pre.resize), self.pre)

    def predict(self, face: np.ndarray) -> Prediction:
        """The expression of one grayscale uint8 face crop (H, W)."""
        began = time.perf_counter()
        b = Breakdown(self.strategy)
        with torch.inference_mode():
            if self.strategy == "edge":
                start = time.perf_counter()
                logits = self.net(self._prepare(face)).numpy()
                b.edge_ms = _ms(start)
            elif self.strategy == "split":
                logits = self._predict_split(face, b)
            else:
                logits = self._predict_cloud(face, b)
        b.total_ms = _ms(began)
        probs = torch.softmax(torch.from_numpy(logits[0]), 0).numpy()
        scores = {name: float(p) for name, p in zip(self.classes, probs, strict=True)}
        return Prediction(self.classes[int(probs.argmax())], scores, logits[0], b)

    def _predict_split(self, face: np.ndarray, b: Breakdown) -> np.ndarray:
        start = time.perf_counter()
        feature = self.head(self._prepare(face))
        b.edge_ms = _ms(start)
        try:
            start = time.perf_counter()
            tensor = encode_feature("feature", feature.numpy(), self.codec)
            b.encode_ms = _ms(start)
            message = self._post("split-stage2", tensor, {"codec": self.codec}, b)
            start = time.perf_counter()
            attended = torch.from_numpy(decode_feature(message.tensor("feature")))
            b.decode_ms += _ms(start)
        except _CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            start = time.perf_counter()
            attended = self.cloud_part(feature)
            b.edge_ms += _ms(start)
        start = time.perf_counter()
        logits = self.tail(attended).numpy()
        b.tail_ms = _ms(start)
        return logits

    def _predict_cloud(self, face: np.ndarray, b: Breakdown) -> np.ndarray:
        start = time.perf_counter()
        if self.image_format == "raw":
            image = np.ascontiguousarray(np.asarray(face, dtype=np.uint8)[None])
        else:
            image = np.empty(1, dtype=object)
            image[0] = encode_image(face, self.image_format)
        b.encode_ms = _ms(start)
        try:
            message = self._post("full", TensorData("image", image), {}, b)
            return message.tensor("logits").data.astype(np.float32)
        except _CloudDown as exc:
            b.fallback, b.error = True, str(exc)
            start = time.perf_counter()
            logits = self.net(self._prepare(face)).numpy()
            b.edge_ms = _ms(start)
            return logits
