"""Confidence-gated escalation: answer on the device when it is sure, ask the cloud's larger model otherwise.

A face is escalated when the device model's confidence is below a threshold. Three measures of
confidence from the probabilities ``p`` (higher = surer):

* ``max``: the top probability;
* ``margin``: the top probability minus the second;
* ``entropy``: minus the entropy of ``p`` (so that, like the others, larger means surer).

The threshold is given directly, or derived from a target escalation rate: the rate's quantile of
the measure over calibration faces (:func:`calibrate`), stored with the model as
``escalation: {"measure": ..., "quantiles": [q_0, q_0.01, ..., q_1]}`` so that a rate maps to a
threshold on the device without data. :func:`policy_curve` scores the whole policy (accuracy
against the share of faces sent) from the two models' logits, with no server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["MEASURES", "calibrate", "choose_threshold", "confidence", "policy_curve", "threshold_for_rate"]

MEASURES = ("max", "margin", "entropy")


def _probs(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def confidence(logits: np.ndarray, measure: str = "margin") -> np.ndarray:
    """The confidence (N,) of each row of logits (N, K) under ``measure``."""
    if measure not in MEASURES:
        raise ValueError(f"unknown confidence measure {measure!r}; expected one of {MEASURES}")
    p = _probs(np.atleast_2d(logits))
    if measure == "max":
        return p.max(1)
    if measure == "margin":
        top2 = np.sort(p, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]
    return (p * np.log(np.clip(p, 1e-12, None))).sum(1)  # minus the entropy


def calibrate(logits: np.ndarray, measure: str = "margin", steps: int = 100) -> dict[str, Any]:
    """The measure's quantiles over calibration faces, at rates 0, 1/steps, ..., 1: what is stored with a model."""
    c = confidence(logits, measure)
    return {"measure": measure, "n": len(c), "quantiles": np.quantile(c, np.linspace(0, 1, steps + 1)).tolist()}


def threshold_for_rate(calibration: Mapping[str, Any], rate: float) -> float:
    """The threshold under which about ``rate`` of the calibration faces fall (0: none, 1: all)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"an escalation rate is a fraction in [0, 1], got {rate}")
    quantiles = np.asarray(calibration["quantiles"], dtype=np.float64)
    if rate == 0.0:
        return -np.inf
    if rate == 1.0:
        return np.inf
    return float(np.interp(rate, np.linspace(0, 1, len(quantiles)), quantiles))


def choose_threshold(
    confidences: np.ndarray,
    *,
    threshold: float | None = None,
    rate: float | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> tuple[float, str]:
    """The threshold to apply, and where it came from: given directly, from a stored calibration of the
    same measure, or (without one) the rate's quantile of ``confidences`` themselves."""
    if (threshold is None) == (rate is None):
        raise ValueError("give exactly one of an escalation threshold and an escalation rate")
    if threshold is not None:
        return float(threshold), "given"
    if calibration is not None:
        return threshold_for_rate(calibration, rate), f"stored calibration ({calibration.get('data', '?')})"
    quantiles = np.quantile(confidences, np.linspace(0, 1, 101)).tolist()
    return threshold_for_rate({"quantiles": quantiles}, rate), "these faces"


def policy_curve(
    edge_logits: np.ndarray,
    cloud_logits: np.ndarray,
    labels: np.ndarray,
    measure: str = "margin",
    rates: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Accuracy of the escalation policy at each target rate: the edge answer where the device is
    sure, the cloud's where not. Each row: ``rate`` asked, ``escalated`` (the share sent), ``threshold``,
    ``accuracy``."""
    rates = np.linspace(0, 1, 21) if rates is None else np.asarray(rates)
    c = confidence(edge_logits, measure)
    edge_right = np.argmax(edge_logits, 1) == labels
    cloud_right = np.argmax(cloud_logits, 1) == labels
    order = np.argsort(c, kind="stable")  # least sure first: these go to the cloud
    rows = []
    for rate in rates:
        k = round(float(rate) * len(c))
        sent = np.zeros(len(c), bool)
        sent[order[:k]] = True
        right = np.where(sent, cloud_right, edge_right)
        threshold = float(c[order[k - 1]]) if k else float("-inf")
        rows.append({"rate": float(rate), "escalated": k / len(c), "threshold": threshold, "accuracy": right.mean()})
    return rows
