"""What the edge runtime returns: the expression, and where each request's time and bytes went."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

__all__ = ["Breakdown", "Prediction"]


@dataclass
class Breakdown:
    """One request's costs. Times in ms; bytes as sent (after compression)."""

    strategy: str
    plan: str = ""
    edge_ms: float = 0.0  # preparing the face and the device's layers before the cloud (or all of them)
    encode_ms: float = 0.0
    upload_ms: float = 0.0  # request sent -> response headers, less the server's compute
    cloud_ms: float = 0.0  # as the server reports it
    download_ms: float = 0.0
    decode_ms: float = 0.0
    tail_ms: float = 0.0  # the device's layers after the cloud
    bytes_up: int = 0
    bytes_down: int = 0
    total_ms: float = 0.0
    fallback: bool = False  # the cloud was wanted but not used: answered on the device
    error: str | None = None  # why, when it fell back
    plan_ms: float = 0.0  # auto: choosing the plan and learning from the request (the strategy's own cost)
    escalated: bool = False  # escalate: the face went to the cloud's larger model
    confidence: float | None = None  # escalate: the device model's confidence

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
