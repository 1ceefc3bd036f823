"""Is one model better than another on the same faces beyond noise? (benchmarks/paired_test.py)"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest


def mcnemar(right_a: np.ndarray, right_b: np.ndarray) -> dict:
    """Accuracies, the two discordant counts and the exact McNemar p-value for per-face correctness.

    Only the faces one model gets right and the other wrong carry information: under "equally good"
    each such face is a fair coin, so the p-value is a two-sided binomial test on those counts.
    """
    right_a, right_b = np.asarray(right_a, dtype=bool), np.asarray(right_b, dtype=bool)
    if right_a.shape != right_b.shape:
        raise ValueError(f"the two models scored different faces: {right_a.shape} and {right_b.shape}")
    only_a, only_b = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    p = binomtest(only_a, only_a + only_b).pvalue if only_a + only_b else 1.0
    return {"n": len(right_a), "accuracy_a": float(right_a.mean()), "accuracy_b": float(right_b.mean()),
            "only_a_right": only_a, "only_b_right": only_b, "p_value": float(p)}  # fmt: skip
