"""Image preparation shared by training, evaluation and inference.

Images are resized **once** to ``resize = round(size / 0.875)`` (224 -> 256, as for ImageNet; 96 ->
110) and kept as uint8. Training takes a random ``size`` x ``size`` crop and a random horizontal
flip of each image (the paper's augmentation), evaluation the centre crop. Augmentation works on
whole uint8 batches, so the input pipeline costs little next to the model step. The gray channel
is repeated to 3 channels and normalised with the training set's mean and std.

:class:`Jitter` optionally re-frames each face first (scale, shift, rotation, borders repeated),
the way a face detector's box scatters around FER2013's frame; a model trained with it loses less
when its faces come from a detector instead of FER2013's crops (docs/RESULTS.md, "End-to-end
accuracy").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["TTA_MODES", "Jitter", "Preprocess", "augment", "center", "crop_flip", "reframe", "resize_once", "tta_views"]


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
        return self.normalize_float(batch.float().div_(255))

    def normalize_float(self, batch: Tensor) -> Tensor:
        """float in [0, 1] (N, 1, H, W) -> float (N, 3, H, W), normalised."""
        return ((batch - self.mean) / self.std).expand(-1, 3, -1, -1)


def resize_once(images: np.ndarray, size: int, chunk: int = 2048) -> Tensor:
    """Resize uint8 images (N, H, W) to a uint8 tensor (N, 1, size, size), antialiased bilinear."""
    out = torch.empty(len(images), 1, size, size, dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.array(images[start : start + chunk])).unsqueeze(1).float()  # copy: may be read-only
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


@dataclass(frozen=True)
class Jitter:
    """How far :func:`reframe` moves each face's frame; all zero (the default) leaves faces as they are."""

    scale: float = 0.0  # the frame's side is multiplied by up to (1 + scale) or divided by it (log-uniform)
    shift: float = 0.0  # its centre moves by up to this fraction of the side, along each axis
    degrees: float = 0.0  # and it turns by up to this many degrees either way

    def __bool__(self) -> bool:
        return bool(self.scale or self.shift or self.degrees)


def reframe(batch: Tensor, jitter: Jitter, generator: torch.Generator | None = None) -> Tensor:
    """Each image of a uint8 batch (N, 1, H, W) seen through a randomly scaled, shifted and turned frame.

    A frame larger than the image (scale > 1) shows the face smaller, with the image's border pixels
    repeated around it, as :func:`edgefer.faces.align_face` does at the edge of a photo.
    """
    n = len(batch)

    def uniform() -> Tensor:  # in [-1, 1)
        return torch.rand(n, generator=generator) * 2 - 1

    side = torch.exp(uniform() * math.log1p(jitter.scale))
    angle = torch.deg2rad(uniform() * jitter.degrees)
    dx, dy = uniform() * 2 * jitter.shift, uniform() * 2 * jitter.shift  # the image spans 2 in grid units
    cos, sin = side * torch.cos(angle), side * torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, dx], 1), torch.stack([sin, cos, dy], 1)], 1)
    grid = F.affine_grid(theta, list(batch.shape), align_corners=False)
    out = F.grid_sample(batch.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.round_().clamp_(0, 255).to(torch.uint8)


def crop_flip(batch: Tensor, size: int, generator: torch.Generator | None = None, jitter: Jitter = Jitter()) -> Tensor:
    """Random re-framing (when ``jitter`` is set), then a random ``size`` crop and horizontal flip of
    each image in a resized uint8 batch; uint8 out."""
    if jitter:
        batch = reframe(batch, jitter, generator)
    n, _, height, width = batch.shape
    top = torch.randint(0, height - size + 1, (n,), generator=generator)
    left = torch.randint(0, width - size + 1, (n,), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    crops = torch.stack(
        [batch[i, :, t : t + size, le : le + size] for i, (t, le) in enumerate(zip(top, left, strict=True))]
    )
    return torch.where(flip.view(n, 1, 1, 1), crops.flip(-1), crops)


def augment(
    batch: Tensor, pre: Preprocess, generator: torch.Generator | None = None, jitter: Jitter = Jitter()
) -> Tensor:
    """:func:`crop_flip`, then normalise: the training input of the plain recipes."""
    return pre.normalize(crop_flip(batch, pre.size, generator, jitter))


def _crop(batch: Tensor, top: int, left: int, size: int) -> Tensor:
    return batch[:, :, top : top + size, left : left + size]


def center(batch: Tensor, pre: Preprocess) -> Tensor:
    """The centre crop of a resized uint8 batch, normalised."""
    height, width = batch.shape[-2:]
    return pre.normalize(_crop(batch, (height - pre.size) // 2, (width - pre.size) // 2, pre.size))


TTA_MODES = ("none", "flip", "tencrop")


def tta_views(batch: Tensor, pre: Preprocess, tta: str = "none") -> list[Tensor]:
    """The uint8 crops test-time augmentation averages over, for a resized batch: ``none`` the centre
    crop; ``flip`` it and its mirror; ``tencrop`` the centre and four corner crops, each mirrored."""
    if tta not in TTA_MODES:
        raise ValueError(f"unknown test-time augmentation {tta!r}; expected one of {TTA_MODES}")
    height, width = batch.shape[-2:]
    size = pre.size
    views = [_crop(batch, (height - size) // 2, (width - size) // 2, size)]
    if tta == "tencrop":
        views += [_crop(batch, t, le, size) for t in (0, height - size) for le in (0, width - size)]
    if tta != "none":
        views += [v.flip(-1) for v in views]
    return views
