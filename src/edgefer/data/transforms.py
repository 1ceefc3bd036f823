"""Image preparation shared by training, evaluation and inference.

Images are resized **once** to ``resize = round(size / 0.875)`` (224 -> 256, as for ImageNet; 96 ->
110) and kept as uint8. Training takes a random ``size`` x ``size`` crop and a random horizontal
flip of each image (the paper's augmentation), evaluation the centre crop. Augmentation works on
whole uint8 batches, so the input pipeline costs little next to the model step. The gray channel
is repeated to 3 channels and normalised with the training set's mean and std.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Preprocess", "augment", "center", "resize_once"]


@dataclass(frozen=True)
class Preprocess:
    """How raw grayscale faces become model input; stored with every checkpoint."""

    size: int  # model input, pixels
    mean: float  # of the training images, in [0, 1]
    std: float

    @property
    def resize(self) -> int:
        return round(self.size / 0.875)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def fit(cls, images: np.ndarray, size: int) -> Preprocess:
        """Mean and std of uint8 images (N, H, W)."""
        pixels = torch.from_numpy(images).float().div_(255)
        return cls(size=size, mean=round(pixels.mean().item(), 4), std=round(pixels.std().item(), 4))

    def normalize(self, batch: Tensor) -> Tensor:
        """uint8 (N, 1, H, W) -> float (N, 3, H, W), normalised."""
        x = batch.float().div_(255).sub_(self.mean).div_(self.std)
        return x.expand(-1, 3, -1, -1)


def resize_once(images: np.ndarray, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 images (N, H, W) to a uint8 tensor (N, 1, size, size), antialiased bilinear."""
    out = torch.empty(len(images), 1, size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.array(images[start : start + chunk])).unsqueeze(1).float()  # copy: may be read-only
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def augment(batch: Tensor, pre: Preprocess, generator: torch.Generator | None = None) -> Tensor:
    """Random crop and horizontal flip of each image in a resized uint8 batch, then normalise."""
    n, _, height, width = batch.shape
    size = pre.size
    top = torch.randint(0, height - size + 1, (n,), generator=generator)
    left = torch.randint(0, width - size + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    crops = torch.stack(
        [batch[i, :, t : t + size, le : le + size] for i, (t, le) in enumerate(zip(top, left, strict=True))]
    )
    crops = torch.where(flip.view(n, 1, 1, 1), crops.flip(-1), crops)
    return pre.normalize(crops)


def center(batch: Tensor, pre: Preprocess) -> Tensor:
    """The centre crop of a resized uint8 batch, normalised."""
    height, width = batch.shape[-2:]
    top, left = (height - pre.size) // 2, (width - pre.size) // 2
    return pre.normalize(batch[:, :, top : top + pre.size, left : left + pre.size])
