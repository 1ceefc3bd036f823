"""An ensemble of classifiers as one module: the log of their averaged probabilities.

The cloud's large model may be several networks trained apart (docs/RESULTS.md). As one
``nn.Module`` it runs wherever a single network does: the server's ``full-large`` model,
evaluation, ONNX export. Members may have different input sizes: each gets the (normalised) input
resized to its own size, which for a linear normalisation shared by all members (they are trained
on the same data, so they share its mean and std) is the same as preparing the face for it alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """``log(mean_i softmax(member_i(resize(x, size_i))))``: log-probabilities, usable as logits."""

    def __init__(self, members: Sequence[nn.Module], *, sizes: Sequence[int]) -> None:
        super().__init__()
        if not members or len(members) != len(sizes):
            raise ValueError(f"an ensemble needs one input size per member, got {len(members)} and {len(sizes)}")
        self.members = nn.ModuleList(members)
        self.sizes = [int(s) for s in sizes]

    def forward(self, x: Tensor) -> Tensor:
        total = None
        for member, size in zip(self.members, self.sizes, strict=True):
            xi = x if x.shape[-1] == size else F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
            p = F.softmax(member(xi), dim=1)
            total = p if total is None else total + p
        return torch.log((total / len(self.members)).clamp_min(1e-12))
