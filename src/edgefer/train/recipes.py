"""Training recipes: what a run does, as data, saved into every checkpoint it writes.

* ``paper``: Wu et al.'s FER2013 recipe. 224 px, SGD (momentum 0.9), lr 0.1 divided by 10 every 30
  epochs, batch 128, 100 epochs, random init, random crop + horizontal flip. On this project's 2-core
  CPU one epoch takes ~16 min, so it is meant for a GPU.
* ``cpu``: what fits a 2-core CPU in about 75 minutes, chosen by measured step time (ms per batch of
  128: 272 at 48 px, 659 at 96 px, 974 at 112 px, 4275 at 224 px): 96 px, 30 epochs, cosine
  schedule, label smoothing 0.1, flip test-time augmentation. At 96 px the Stage2 map is 12 x 12,
  which fits 3 DWT levels of haar but only 2 of db2, so SFP models use ``wavelet="haar"`` here.
* ``finetune``: the paper's fine-tuning on another dataset: a new head and a constant lr of 0.001,
  starting from a checkpoint; the input size is the checkpoint's.
* ``prune``: fine-tuning a pruned model on the data it was trained on (its head kept): a short
  cosine schedule from lr 0.01 with the ``cpu`` recipe's label smoothing and flip TTA; the input
  size is the checkpoint's and the epochs are ``edgefer prune --finetune-epochs``.
* ``reframe``: fine-tuning a trained model on the same data (``edgefer train --init CKPT
  --keep-head``) with random re-framing (:class:`edgefer.data.Jitter`: side x/÷ 1.2, centre +-8%,
  +-10 degrees), the scatter measured between RetinaFace's box and FER2013's frame, so that faces
  found in photos lose less against FER2013's own crops (docs/RESULTS.md, "End-to-end accuracy").
  5 epochs, cosine from lr 0.01.
* ``pipeline``: ``reframe``, and each training face is also pasted into a synthetic canvas, found
  by RetinaFace and cut out by the alignment (:func:`edgefer.faces.synthetic.pipeline_views`), once
  on a ``replicate`` and once on a ``noise`` background. Every epoch shows each face once, as its
  FER2013 crop or one of these two, at random: the model sees the crops ``edgefer predict`` makes.
  The views are data: the caller makes them and passes ``views=`` to :func:`train`.
* ``strong``: the recipe of the accuracy runs (the paper's Table 1 under one recipe, the cloud
  models): 60 epochs, cosine after a warm-up, label smoothing, random re-framing, random erasing,
  the photometric effects of real photos, FER+ votes blended into the targets (a quarter), flip
  TTA. Each ingredient was measured on short runs (docs/RESULTS.md, "What the recipe is made of");
  MixUp/CutMix and logit adjustment exist as options but did not earn a place.
* ``distill``: ``strong`` plus a teacher's soft targets (:mod:`edgefer.train.distill`).

"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from ..data import Jitter
from ..data.photometric import Erasing, Photometric
from ..data.transforms import TTA_MODES
from .mixing import Mixing

__all__ = ["RECIPES", "Recipe", "recipe_from_meta"]


@dataclass(frozen=True)
class Recipe:
    name: str
    input_size: int
    epochs: int
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "step"  # step (x gamma every step_size epochs) | cosine | constant
    step_size: int = 30
    gamma: float = 0.1
    warmup_epochs: float = 0.0  # linear warm-up from 0 before the schedule
    label_smoothing: float = 0.0
    tta: str = "none"  # test-time augmentation in evaluation: none | flip | tencrop
    jitter: Jitter = field(default_factory=Jitter)  # random re-framing before the crop (none by default)
    photometric: Photometric = field(default_factory=Photometric)  # blur, JPEG, tone, noise (none by default)
    erasing: Erasing = field(default_factory=Erasing)  # random erasing (none by default)
    mixing: Mixing = field(default_factory=Mixing)  # MixUp / CutMix (none by default)
    votes_weight: float = 0.0  # FER+ vote distributions blended into the targets (needs votes)
    logit_adjust: float = 0.0  # tau of logit adjustment against the training prior
    distill_alpha: float = 0.0  # weight of the teacher's soft targets (needs a teacher)
    distill_temperature: float = 4.0
    teacher_mode: str = "online"  # online (teacher on every augmented batch) | fixed (once, centre crops)
    pipeline_views: bool = False  # also show each face as the detector and alignment cut it (see module doc)
    sfp_overrides: dict[str, Any] = field(default_factory=dict)  # for models with SFP

    def __post_init__(self) -> None:
        if self.tta not in TTA_MODES:
            raise ValueError(f"unknown tta {self.tta!r}; expected one of {TTA_MODES}")
        if self.teacher_mode not in ("online", "fixed"):
            raise ValueError(f"unknown teacher_mode {self.teacher_mode!r}; expected online or fixed")

    def lr_at(self, epoch: float) -> float:
        """Learning rate at a (fractional) epoch."""
        if epoch < self.warmup_epochs:
            return self.lr * epoch / self.warmup_epochs
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            return self.lr * self.gamma ** int(epoch // self.step_size)
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * min(epoch / self.epochs, 1.0)))
        raise ValueError(f"unknown schedule {self.schedule!r}; expected step, cosine or constant")


def recipe_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's recipe as saved, with ``tta`` filled in for checkpoints that saved ``tta_flip``."""
    recipe = dict(meta.get("recipe", {}))
    if "tta" not in recipe:
        recipe["tta"] = "flip" if recipe.get("tta_flip") else "none"
    return recipe


_REFRAME = Recipe(
    "reframe",
    input_size=0,
    epochs=5,
    lr=0.01,
    schedule="cosine",
    label_smoothing=0.1,
    tta="flip",
    jitter=Jitter(scale=0.2, shift=0.08, degrees=10.0),
)

# Chosen by measurement (benchmarks/recipe_ablation.py, docs/RESULTS.md "What the recipe is made of"):
# photometric effects (+2.0 pt on real photos), random erasing (+0.8 pt on CK+ and on real photos) and
# FER+ votes (at 0.5: +13.6 pt on real photos and +8.8 pt on FER+ labels, -2.3 pt on FER2013's own labels;
# 0.25 here, between the two) are in; MixUp/CutMix (no gain measured) and logit adjustment in training
# (-2 pt on FER2013) are not.
_STRONG = Recipe(
    "strong",
    input_size=96,
    epochs=60,
    schedule="cosine",
    warmup_epochs=1,
    label_smoothing=0.1,
    tta="flip",
    jitter=Jitter(scale=0.15, shift=0.06, degrees=10.0),
    photometric=Photometric.real_photos(),
    erasing=Erasing(p=0.5),
    votes_weight=0.25,
    sfp_overrides={"wavelet": "haar"},
)

RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", input_size=224, epochs=100),
    "cpu": Recipe(
        "cpu",
        input_size=96,
        epochs=30,
        schedule="cosine",
        label_smoothing=0.1,
        tta="flip",
        sfp_overrides={"wavelet": "haar"},
    ),
    "finetune": Recipe("finetune", input_size=0, epochs=30, lr=0.001, schedule="constant", tta="flip"),
    "prune": Recipe("prune", input_size=0, epochs=3, lr=0.01, schedule="cosine", label_smoothing=0.1, tta="flip"),
    "reframe": _REFRAME,
    "pipeline": replace(_REFRAME, name="pipeline", pipeline_views=True),
    "strong": _STRONG,
    "distill": replace(_STRONG, name="distill", distill_alpha=0.7, distill_temperature=4.0),
}
