"""Knowledge distillation (Hinton et al. 2015): a teacher ensemble's soft targets for a student.

The teacher is one or more trained checkpoints; their softened probabilities
``softmax(logits / T)`` are averaged. The student's loss (:func:`distillation_loss`) is

    (1 - alpha) * CE(student, targets) + alpha * T^2 * KL(teacher_T || student_T)

where ``targets`` are the usual training targets (hard or FER+ labels, smoothed, mixed). Two ways
to get the teacher's side, chosen by the recipe's ``teacher_mode``:

* ``online``: the teacher sees exactly the augmented (and mixed) batch the student sees, every
  step ("consistent teaching", Beyer et al. 2022). Costs one teacher forward pass per step.
* ``fixed``: the teacher's flip-averaged probabilities on each face's centre crop, computed once
  per run and cached in ``OUT/teacher.pt``; a mixed batch mixes them like its labels. Costs one
  pass over the training set, once.

Each teacher member keeps its own preprocessing (input size, normalisation): it gets the student's
crop in [0, 1], resized to its own input size when that differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.transforms import Preprocess, center, resize_once
from ..loading import load_model

__all__ = ["Teacher", "distillation_loss"]


class Teacher:
    """An ensemble of models, each with its preprocessing, averaged in probability space."""

    def __init__(self, members: Sequence[tuple[nn.Module, Preprocess]], *, sources: Sequence[str] = ()) -> None:
        if not members:
            raise ValueError("a teacher needs at least one model")
        self.members = [(model.eval(), pre) for model, pre in members]
        self.sources = list(sources)

    @classmethod
    def load(cls, checkpoints: Sequence[str | Path], classes: Sequence[str]) -> Teacher:
        """Load checkpoint folders; each must predict ``classes`` in that order."""
        members, sources = [], []
        for path in checkpoints:
            model = load_model(path, "torch")
            if model.classes != list(classes):
                raise ValueError(f"teacher {path} predicts {model.classes}, the data has {list(classes)}")
            members.append((model.net, model.preprocess))
            sources.append(str(path))
        return cls(members, sources=sources)

    def probs(self, x01: Tensor, temperature: float = 1.0) -> Tensor:
        """Averaged ``softmax(logits / T)`` for crops in [0, 1] (N, 1, S, S)."""
        total = None
        with torch.inference_mode():
            for model, pre in self.members:
                x = x01
                if x.shape[-1] != pre.size:
                    x = F.interpolate(x, size=(pre.size, pre.size), mode="bilinear", antialias=True)
                p = F.softmax(model(pre.normalize_float(x)) / temperature, dim=1)
                total = p if total is None else total + p
        return total / len(self.members)

    def centre_probs(
        self, images: np.ndarray, temperature: float = 1.0, *, batch_size: int = 256, progress: str | None = None
    ) -> Tensor:
        """Averaged ``softmax(logits / T)`` on each raw face's centre crop and its mirror image.

        A mirrored ensemble (``mirror``: it sees both already, and flipping its input changes nothing)
        is run once, on the centre crop.
        """
        from tqdm import tqdm

        total = torch.zeros(len(images), 0)
        for model, pre in tqdm(self.members, desc=progress, disable=progress is None or None, unit="model"):
            resized = resize_once(images, pre.resize)
            parts = []
            with torch.inference_mode():
                for start in range(0, len(resized), batch_size):
                    x = center(resized[start : start + batch_size], pre)
                    p = F.softmax(model(x) / temperature, 1)
                    if not getattr(model, "mirror", False):
                        p = (p + F.softmax(model(x.flip(-1)) / temperature, 1)) / 2
                    parts.append(p)
            p = torch.cat(parts)
            total = p if total.numel() == 0 else total + p
        return total / len(self.members)


def distillation_loss(
    student_logits: Tensor, targets: Tensor, teacher_probs: Tensor, *, alpha: float, temperature: float
) -> Tensor:
    """``(1 - alpha) * CE(targets) + alpha * T^2 * KL(teacher || student)`` at temperature T."""
    hard = -(targets * F.log_softmax(student_logits, dim=1)).sum(1).mean()
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), teacher_probs, reduction="batchmean")
    return (1 - alpha) * hard + alpha * temperature**2 * soft
