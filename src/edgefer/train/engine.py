"""Training and evaluation loops, recipes, per-epoch checkpoints and resume.

Recipes:

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
  by RetinaFace and cut out by the alignment (:func:`edgefer.faces.synthetic.pipeline_crops`), once
  on a ``replicate`` and once on a ``noise`` background. Every epoch shows each face once, as its
  FER2013 crop or one of these two, at random: the model sees the crops ``edgefer predict`` makes.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data import FaceData, Jitter, Preprocess, augment, center, resize_once
from ..models import FERNet, build
from ..models.registry import resolve_config
from .checkpoint import load_checkpoint, preprocess_of, save_checkpoint, save_train_state
from .metrics import classification_report

__all__ = ["RECIPES", "Recipe", "evaluate", "predict_logits", "train", "train_one_epoch"]

log = logging.getLogger(__name__)


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
    label_smoothing: float = 0.0
    tta_flip: bool = False  # evaluate on the image and its mirror, averaging probabilities
    jitter: Jitter = field(default_factory=Jitter)  # random re-framing before the crop (none by default)
    pipeline_views: bool = False  # also show each face as the detector and alignment cut it (see module doc)
    sfp_overrides: dict[str, Any] = field(default_factory=dict)  # for models with SFP

    def lr_at(self, epoch: float) -> float:
        """Learning rate at a (fractional) epoch."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            return self.lr * self.gamma ** int(epoch // self.step_size)
        if self.schedule == "cosine":
            return 0.5 * self.lr * (1 + math.cos(math.pi * min(epoch / self.epochs, 1.0)))
        raise ValueError(f"unknown schedule {self.schedule!r}; expected step, cosine or constant")


_REFRAME = Recipe(
    "reframe",
    input_size=0,
    epochs=5,
    lr=0.01,
    schedule="cosine",
    label_smoothing=0.1,
    tta_flip=True,
    jitter=Jitter(scale=0.2, shift=0.08, degrees=10.0),
)

RECIPES: dict[str, Recipe] = {
    "paper": Recipe("paper", input_size=224, epochs=100),
    "cpu": Recipe(
        "cpu",
        input_size=96,
        epochs=30,
        schedule="cosine",
        label_smoothing=0.1,
        tta_flip=True,
        sfp_overrides={"wavelet": "haar"},
    ),
    "finetune": Recipe("finetune", input_size=0, epochs=30, lr=0.001, schedule="constant", tta_flip=True),
    "prune": Recipe("prune", input_size=0, epochs=3, lr=0.01, schedule="cosine", label_smoothing=0.1, tta_flip=True),
    "reframe": _REFRAME,
    "pipeline": replace(_REFRAME, name="pipeline", pipeline_views=True),
}


def predict_logits(
    model: nn.Module, images: Tensor, pre: Preprocess, *, tta_flip: bool = False, batch_size: int = 256
) -> Tensor:
    """Log-probabilities for resized uint8 images (N, 1, R, R), optionally averaged with the mirror image."""
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = center(images[start : start + batch_size], pre)
            probs = F.softmax(model(x), dim=1)
            if tta_flip:
                probs = (probs + F.softmax(model(x.flip(-1)), dim=1)) / 2
            out.append(probs.clamp_min(1e-12).log())
    return torch.cat(out)


def _score(model: nn.Module, images: Tensor, data: FaceData, pre: Preprocess, tta_flip: bool) -> dict[str, Any]:
    logp = predict_logits(model, images, pre, tta_flip=tta_flip)
    report = classification_report(data.labels, logp.argmax(1).numpy(), data.classes)
    report["loss"] = float(F.nll_loss(logp, torch.from_numpy(data.labels)))
    return report


def evaluate(model: nn.Module, data: FaceData, pre: Preprocess, *, tta_flip: bool = False) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class accuracy, confusion matrix and mean loss on a dataset."""
    return _score(model, resize_once(data.images, pre.resize), data, pre, tta_flip)


def train_one_epoch(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    pre: Preprocess,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    epoch: int,
    generator: torch.Generator,
    on_batch: Callable[[int, int, int, float], None] | None = None,
) -> tuple[float, float]:
    """One pass over the resized uint8 training images; returns mean loss and accuracy.

    ``images`` is (N, 1, R, R), or (V, N, 1, R, R) for V versions of each image: every image is then
    shown once, in a version drawn at random.
    """
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    views = images if images.dim() == 5 else images.unsqueeze(0)
    n = views.shape[1]
    steps = n // recipe.batch_size  # drop the ragged last batch (BatchNorm needs > 1 sample)
    order = torch.randperm(n, generator=generator)
    view = (
        torch.randint(0, len(views), (n,), generator=generator) if len(views) > 1 else torch.zeros(n, dtype=torch.long)
    )
    loss_sum, correct, seen = 0.0, 0, 0
    for step in range(steps):
        # determine and set the learning rate (per step, so cosine is smooth)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr_at(epoch + step / steps)
        index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        x, y = augment(views[view[index], index], pre, generator, recipe.jitter), labels[index]
        # forward, backward, update
        logits = model(x)
        loss = criterion(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += loss.item() * len(y)  # note: a sync point, cheap on CPU
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        if on_batch is not None:
            on_batch(epoch, step, steps, loss.item())
    return loss_sum / seen, correct / seen


def pipeline_views(faces: np.ndarray, cache: Path) -> list[np.ndarray]:
    """Each 48x48 face as RetinaFace and the alignment cut it from a canvas, once per background.

    Faces the detector misses keep their original crop. Cached in ``cache`` (it takes ~5 min per
    background for FER2013's 28,709 training faces at 2 threads).
    """
    from ..faces import get_detector
    from ..faces.synthetic import BACKGROUNDS, pipeline_crops

    if cache.is_file():
        with np.load(cache) as saved:
            if all(len(saved[b]) == len(faces) for b in BACKGROUNDS):
                return [saved[b] for b in BACKGROUNDS]
    detector = get_detector("retinaface", threads=torch.get_num_threads())
    views = {}
    for seed, background in enumerate(BACKGROUNDS, start=11):
        result = pipeline_crops(faces, detector, background, seed=seed, progress=f"pipeline views ({background})")
        missed = np.array([f is None for f in result.found])
        views[background] = np.where(missed[:, None, None], faces, result.crops)
        log.info("pipeline views (%s): the detector missed %d of %d faces", background, missed.sum(), len(faces))
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(cache, **views)
    return [views[b] for b in BACKGROUNDS]


def _build_model(model_name: str, overrides: dict[str, Any], recipe: Recipe, num_classes: int) -> FERNet:
    if "sfp" in resolve_config(model_name, **overrides).order:
        overrides = {**recipe.sfp_overrides, **overrides}
    return build(model_name, num_classes=num_classes, **overrides)


def train(
    model_name: str,
    train_data: FaceData,
    val_data: FaceData,
    out: str | Path,
    *,
    recipe: Recipe,
    overrides: dict[str, Any] | None = None,
    init: str | Path | None = None,
    new_head: bool = True,
    seed: int = 0,
    resume: bool = False,
    data_note: str = "",
    extra_meta: dict[str, Any] | None = None,
    on_batch: Callable[[int, int, int, float], None] | None = None,
) -> dict[str, Any]:
    """Train, evaluate on ``val_data`` after every epoch, checkpoint to ``out/last`` and ``out/best``.

    ``init`` fine-tunes from a checkpoint with a fresh head for ``train_data``'s classes, or with its
    own head when ``new_head`` is false (the classes must then be the same). With ``resume`` the run
    continues from ``out/last`` (weights, optimizer, schedule, data order). ``extra_meta`` goes into
    every checkpoint's metadata. Returns the best epoch's metrics.
    """
    out = Path(out)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    torch.manual_seed(seed)
    num_classes = len(train_data.classes)
    if init is not None:
        base, base_meta = load_checkpoint(init)
        model_name, overrides = (
            base_meta["build"]["name"],
            {k: v for k, v in base_meta["build"].items() if k not in ("name", "num_classes")},
        )
        model = build(model_name, num_classes=num_classes, **overrides)
        if new_head:
            state = {k: v for k, v in base.state_dict().items() if not k.startswith("fc.")}
            model.load_state_dict(state, strict=False)  # everything but the new head
        else:
            if list(base_meta["classes"]) != list(train_data.classes):
                raise ValueError(
                    f"{init} was trained on classes {base_meta['classes']}, the data has {list(train_data.classes)}; "
                    "keeping its head needs the same classes"
                )
            model.load_state_dict(base.state_dict())
        recipe = replace(recipe, input_size=base_meta["preprocess"]["size"])
    else:
        model = _build_model(model_name, overrides, recipe, num_classes)
    if init is not None and not new_head:
        pre = preprocess_of(base_meta)  # the same model on the same task: the same normalisation
    else:
        pre = Preprocess.fit(train_data.images, recipe.input_size)
    generator = torch.Generator().manual_seed(seed)
    start_epoch, best = 0, {"accuracy": -1.0}
    resume_state = None
    if resume:
        last = out / "last"
        model, meta = load_checkpoint(last)
        resume_state = torch.load(last / "train_state.pt", weights_only=False)
        generator.set_state(resume_state["generator"])
        start_epoch, best = resume_state["epoch"], resume_state["best"]
        pre = preprocess_of(meta)
        log.info("resuming %s at epoch %d of %d", last, start_epoch + 1, recipe.epochs)
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])  # momentum buffers too
    if len(train_data) < recipe.batch_size:
        raise ValueError(f"{len(train_data)} training images is less than one batch of {recipe.batch_size}")

    images = resize_once(train_data.images, pre.resize)
    if recipe.pipeline_views:
        crops = pipeline_views(train_data.images, out / "pipeline_views.npz")
        images = torch.stack([images, *(resize_once(c, pre.resize) for c in crops)])
    labels = torch.from_numpy(train_data.labels)
    val_images = resize_once(val_data.images, pre.resize)
    meta_base = {
        "classes": list(train_data.classes),
        "preprocess": pre.as_dict(),
        "recipe": asdict(recipe),
        "data": {"train": train_data.source, "val": val_data.source, "note": data_note},
        "seed": seed,
        "init": None if init is None else str(init),
        **(extra_meta or {}),
    }
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.csv"
    if start_epoch == 0:
        log_path.write_text("epoch,lr,train_loss,train_acc,val_loss,val_acc,val_macro_f1,seconds\n")

    for epoch in range(start_epoch, recipe.epochs):
        began = time.perf_counter()
        train_loss, train_acc = train_one_epoch(
            model, images, labels, pre, optimizer, recipe, epoch, generator, on_batch
        )
        report = _score(model, val_images, val_data, pre, recipe.tta_flip)
        seconds = time.perf_counter() - began
        with log_path.open("a") as f:
            csv.writer(f).writerow(
                [
                    epoch + 1,
                    f"{recipe.lr_at(epoch):.6f}",
                    f"{train_loss:.4f}",
                    f"{train_acc:.4f}",
                    f"{report['loss']:.4f}",
                    f"{report['accuracy']:.4f}",
                    f"{report['macro_f1']:.4f}",
                    f"{seconds:.1f}",
                ]
            )
        log.info(
            "epoch %d/%d: train loss %.4f acc %.4f, val acc %.4f (%.0f s)",
            epoch + 1,
            recipe.epochs,
            train_loss,
            train_acc,
            report["accuracy"],
            seconds,
        )
        metrics = {"epoch": epoch + 1, **{k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")}}
        if report["accuracy"] > best["accuracy"]:
            best = metrics
            save_checkpoint(out / "best", model, {**meta_base, "metrics": metrics})
        save_checkpoint(out / "last", model, {**meta_base, "metrics": metrics, "best": best})
        save_train_state(
            out / "last",
            {"optimizer": optimizer.state_dict(), "generator": generator.get_state(), "epoch": epoch + 1, "best": best},
        )
    return best
