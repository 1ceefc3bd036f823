"""Training targets as class distributions: hard labels, label smoothing, FER+ votes, logit adjustment.

Every loss in :mod:`edgefer.train.engine` is a cross-entropy against a target distribution
(N, K), so hard labels, smoothed labels, annotator votes and a teacher's soft targets are one code
path:

* :func:`soft_targets`: one-hot labels, blended with a vote distribution (FER+'s ten annotators
  for every FER2013 face) where one is given, then smoothed.
* :func:`log_prior`: the training set's class prior, for logit adjustment (Menon et al. 2021,
  "Long-tail learning via logit adjustment"): training on ``logits + tau * log prior`` and predicting
  with the plain logits moves the decision boundaries towards the frequent classes during
  training, and so away from the rare ones (disgust is 1.5% of FER2013 Training) at test time.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["log_prior", "soft_cross_entropy", "soft_targets"]


def soft_targets(
    labels: np.ndarray | Tensor,
    num_classes: int,
    *,
    votes: np.ndarray | None = None,
    votes_weight: float = 0.0,
    smoothing: float = 0.0,
) -> Tensor:
    """Target distributions (N, K): ``(1 - w) * one_hot + w * votes / sum(votes)``, then label smoothing.

    Rows whose votes sum to 0 (no annotator chose one of the K classes) keep the one-hot label.
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    targets = F.one_hot(labels, num_classes).float()
    if votes is not None and votes_weight > 0:
        counts = torch.as_tensor(votes, dtype=torch.float32)
        if counts.shape != targets.shape:
            raise ValueError(f"votes have shape {tuple(counts.shape)}, expected {tuple(targets.shape)}")
        total = counts.sum(1, keepdim=True)
        has_votes = total > 0
        distribution = torch.where(has_votes, counts / total.clamp_min(1), targets)
        targets = (1 - votes_weight) * targets + votes_weight * distribution
    if smoothing:
        targets = (1 - smoothing) * targets + smoothing / num_classes
    return targets


def log_prior(labels: np.ndarray | Tensor, num_classes: int) -> Tensor:
    """log of each class's share of ``labels`` (a class with no sample counts as one)."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=num_classes).float()
    return (counts.clamp_min(1) / counts.sum()).log()


def soft_cross_entropy(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, K) against target distributions (N, K)."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
