"""MixUp (Zhang et al. 2018) and CutMix (Yun et al. 2019) on a batch and its target distributions.

As in timm's ``Mixup`` (batch mode), a batch is mixed with its own reverse, with one mixing
coefficient per batch; when both are enabled each batch uses one of the two at random. The
coefficient is returned, so other per-image targets (a teacher's cached soft targets) can be mixed
the same way with :func:`mix_targets`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["Mixing", "mix", "mix_targets"]


@dataclass(frozen=True)
class Mixing:
    mixup: float = 0.0  # Beta(alpha, alpha) for MixUp's coefficient; 0 disables MixUp
    cutmix: float = 0.0  # Beta(alpha, alpha) for CutMix's box area; 0 disables CutMix
    p: float = 1.0  # share of batches that are mixed at all

    def __bool__(self) -> bool:
        return (self.mixup > 0 or self.cutmix > 0) and self.p > 0


def _beta(alpha: float, generator: torch.Generator | None) -> float:
    """A Beta(alpha, alpha) draw that follows ``generator`` (torch's Beta sampler takes none)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix(
    x: Tensor, targets: Tensor, config: Mixing, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor, float]:
    """Mixed images (N, C, H, W), mixed targets (N, K) and the weight ``lam`` of the original images."""
    if not config or float(torch.rand(1, generator=generator)) >= config.p:
        return x, targets, 1.0
    use_cutmix = config.cutmix > 0 and (config.mixup <= 0 or float(torch.rand(1, generator=generator)) < 0.5)
    partner = x.flip(0)
    if not use_cutmix:
        lam = _beta(config.mixup, generator)
        return lam * x + (1 - lam) * partner, mix_targets(targets, lam), lam
    height, width = x.shape[-2:]
    area = 1 - _beta(config.cutmix, generator)  # the box's share of the image
    h, w = round(height * area**0.5), round(width * area**0.5)
    cy = int(torch.randint(0, height, (1,), generator=generator))
    cx = int(torch.randint(0, width, (1,), generator=generator))
    top, bottom = max(cy - h // 2, 0), min(cy + (h + 1) // 2, height)
    left, right = max(cx - w // 2, 0), min(cx + (w + 1) // 2, width)
    out = x.clone()
    out[..., top:bottom, left:right] = partner[..., top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (height * width)  # the box as clipped
    return out, mix_targets(targets, lam), lam


def mix_targets(targets: Tensor, lam: float) -> Tensor:
    """Targets mixed as :func:`mix` mixed their images: ``lam * t + (1 - lam) * reverse(t)``."""
    if lam == 1.0:
        return targets
    return lam * targets + (1 - lam) * targets.flip(0)
