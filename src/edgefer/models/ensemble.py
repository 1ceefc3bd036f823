"""An ensemble of classifiers as one module: the log of their averaged probabilities.

The cloud's large model may be several networks trained apart (docs/RESULTS.md). As one
``nn.Module`` it runs wherever a single network does: the server's ``full-large`` model,
evaluation, ONNX export. Members may have different input sizes: each gets the (normalised) input
resized to its own size, which for a linear normalisation shared by all members (they are trained
on the same data, so they share its mean and std) is the same as preparing the face for it alone.

``mirror=True`` also runs every member on the mirrored face (flip test-time augmentation inside the
model): the cloud has the compute to spare, and a model served as ``full-large`` predicts one crop
at a time, so the TTA that scores it on PublicTest must live in the model to reach the server.

``shift`` is added to the output: post-hoc logit adjustment (:mod:`edgefer.train.adjust`) of the
averaged probabilities, ``softmax(output) = mean_p * exp(shift)`` renormalised, which no member's
bias can express.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Ensemble"]


class Ensemble(nn.Module):
    """``log(mean_i softmax(member_i(resize(x, size_i))))``: log-probabilities, usable as logits.

    With ``mirror`` the mean also runs over each member's view of the mirrored face; ``shift`` (one
    number a class) is added to the result."""

    def __init__(
        self,
        members: Sequence[nn.Module],
        *,
        sizes: Sequence[int],
        mirror: bool = False,
        shift: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if not members or len(members) != len(sizes):
            raise ValueError(f"an ensemble needs one input size per member, got {len(members)} and {len(sizes)}")
        self.members = nn.ModuleList(members)
        self.sizes = [int(s) for s in sizes]
        self.mirror = bool(mirror)
        # not in the weights: a checkpoint keeps it with the build arguments (edgefer.loading.make_ensemble)
        self.register_buffer("shift", None if shift is None else torch.tensor(shift, dtype=torch.float32), False)

    def forward(self, x: Tensor) -> Tensor:
        views = (x, torch.flip(x, dims=[-1])) if self.mirror else (x,)
        total = None
        for member, size in zip(self.members, self.sizes, strict=True):
            for view in views:
                if view.shape[-1] != size:
                    view = F.interpolate(view, size=(size, size), mode="bilinear", antialias=True)
                p = F.softmax(member(view), dim=1)
                total = p if total is None else total + p
        out = torch.log((total / (len(self.members) * len(views))).clamp_min(1e-12))
        return out if self.shift is None else out + self.shift
