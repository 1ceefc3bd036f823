"""Classification metrics from predictions: accuracy, macro-F1, per-class accuracy, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["classification_report", "confusion_matrix"]


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts; row = true class, column = predicted class."""
    return np.bincount(labels * num_classes + predictions, minlength=num_classes**2).reshape(num_classes, num_classes)


def classification_report(labels: np.ndarray, predictions: np.ndarray, classes: Sequence[str]) -> dict:
    """``accuracy`` (a fraction), ``macro_f1``, ``per_class`` accuracy (recall) and F1, ``confusion``, ``n``."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    matrix = confusion_matrix(labels, predictions, len(classes))
    true_positive = np.diag(matrix).astype(float)
    support, predicted = matrix.sum(1), matrix.sum(0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    present = support > 0
    return {
        "accuracy": float(true_positive.sum() / max(len(labels), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {
            name: {"accuracy": float(recall[i]), "f1": float(f1[i]), "n": int(support[i])}
            for i, name in enumerate(classes)
        },
        "confusion": matrix.tolist(),
        "classes": list(classes),
        "n": len(labels),
    }
