"""What real photos do to a face that FER2013's crops rarely show: blur, JPEG artefacts, other
exposure and contrast, sensor noise, and things in front of the face.

:func:`photometric` applies each effect to a random share of a uint8 batch (N, 1, H, W); with the
default :class:`Photometric` (all off) it returns the batch unchanged. :func:`erase` is random
erasing (Zhong et al. 2020, "Random Erasing Data Augmentation"): a rectangle of random grey values
per image, the "small occlusions" of a hand, glasses or a microphone.

Blur and JPEG use torchvision's kernels image by image (only the chosen share of a batch); the
tone changes, noise and erasing are computed for the whole batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.io import decode_jpeg, encode_jpeg
from torchvision.transforms.v2 import functional as TF

__all__ = ["Erasing", "Photometric", "erase", "photometric"]


@dataclass(frozen=True)
class Photometric:
    """Probability and range of each effect; the default (all probabilities 0) changes nothing."""

    gamma_p: float = 0.0
    gamma: float = 1.5  # gamma drawn log-uniformly in [1/gamma, gamma]
    contrast_p: float = 0.0
    contrast: float = 0.4  # contrast factor in [1 - contrast, 1 + contrast], about the image's mean
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.4, 1.6)  # Gaussian sigma in pixels of the model input
    jpeg_p: float = 0.0
    jpeg_quality: tuple[int, int] = (15, 75)
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (2.0, 10.0)  # grey levels

    def __bool__(self) -> bool:
        return any(p > 0 for p in (self.gamma_p, self.contrast_p, self.blur_p, self.jpeg_p, self.noise_p))

    @classmethod
    def real_photos(cls) -> Photometric:
        """The setting the recipes use: each effect on a fifth to a half of the faces."""
        return cls(gamma_p=0.5, contrast_p=0.5, blur_p=0.25, jpeg_p=0.3, noise_p=0.25)


@dataclass(frozen=True)
class Erasing:
    """Random erasing: with probability ``p`` a rectangle of ``area`` x the image with aspect ratio in
    [1/``ratio``, ``ratio``] is filled with uniform random grey values."""

    p: float = 0.0
    area: tuple[float, float] = (0.02, 0.2)
    ratio: float = 3.3

    def __bool__(self) -> bool:
        return self.p > 0


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def _chosen(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """Indices of the images (each with probability p) an effect applies to."""
    return torch.nonzero(torch.rand(n, generator=generator) < p).flatten()


def photometric(batch: Tensor, config: Photometric, generator: torch.Generator | None = None) -> Tensor:
    """A uint8 batch (N, 1, H, W) with each effect of ``config`` applied to a random share of it."""
    if not config:
        return batch
    n = len(batch)
    x = batch.float()
    # tone: gamma then contrast, both per image, in [0, 255]
    index = _chosen(n, config.gamma_p, generator)
    if len(index):
        gamma = torch.exp(_uniform(len(index), -1, 1, generator) * math.log(config.gamma)).view(-1, 1, 1, 1)
        x[index] = (x[index] / 255).pow(gamma) * 255
    index = _chosen(n, config.contrast_p, generator)
    if len(index):
        factor = _uniform(len(index), 1 - config.contrast, 1 + config.contrast, generator).view(-1, 1, 1, 1)
        mean = x[index].mean(dim=(1, 2, 3), keepdim=True)
        x[index] = (x[index] - mean) * factor + mean
    index = _chosen(n, config.noise_p, generator)
    if len(index):
        std = _uniform(len(index), *config.noise_std, generator).view(-1, 1, 1, 1)
        x[index] = x[index] + std * torch.randn(x[index].shape, generator=generator)
    out = x.round_().clamp_(0, 255).to(torch.uint8)
    # blur and JPEG, image by image with torchvision's kernels
    for i, sigma in zip(
        _chosen(n, config.blur_p, generator).tolist(),
        _uniform(n, *config.blur_sigma, generator).tolist(),
        strict=False,
    ):
        size = 2 * math.ceil(3 * sigma) + 1
        out[i] = TF.gaussian_blur(out[i], kernel_size=[size, size], sigma=[sigma, sigma])
    low, high = config.jpeg_quality
    for i in _chosen(n, config.jpeg_p, generator).tolist():
        quality = int(torch.randint(low, high + 1, (1,), generator=generator))
        out[i] = decode_jpeg(encode_jpeg(out[i], quality=quality))
    return out


def erase(batch: Tensor, config: Erasing, generator: torch.Generator | None = None) -> Tensor:
    """Random erasing on a uint8 batch (N, 1, H, W): one rectangle of random grey per chosen image."""
    if not config:
        return batch
    n, _, height, width = batch.shape
    index = _chosen(n, config.p, generator)
    if not len(index):
        return batch
    k = len(index)
    area = _uniform(k, *config.area, generator) * height * width
    log_ratio = _uniform(k, -math.log(config.ratio), math.log(config.ratio), generator)
    aspect = torch.exp(log_ratio)
    h = (area * aspect).sqrt().round().clamp(1, height).long()
    w = (area / aspect).sqrt().round().clamp(1, width).long()
    top = (torch.rand(k, generator=generator) * (height - h + 1)).long()
    left = (torch.rand(k, generator=generator) * (width - w + 1)).long()
    rows, cols = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
    inside = (
        (rows >= top.view(-1, 1, 1))
        & (rows < (top + h).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1))
        & (cols < (left + w).view(-1, 1, 1))
    ).unsqueeze(1)
    noise = torch.randint(0, 256, (k, 1, height, width), generator=generator, dtype=torch.uint8)
    out = batch.clone()
    out[index] = torch.where(inside, noise, batch[index])
    return out
