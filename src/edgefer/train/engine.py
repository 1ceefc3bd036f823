"""Training and evaluation loops, per-epoch checkpoints and resume (the recipes: :mod:`.recipes`).

Every loss is a cross-entropy against target distributions (:mod:`edgefer.train.targets`), so hard
labels, smoothing, votes, mixing and a teacher share one code path. Training runs on one process,
or on several under ``torchrun`` (DistributedDataParallel, gloo on CPU, nccl on GPU): every rank
draws the same global batch and augmentation and trains on its own slice of it, so N ranks compute
what one process computes with ``micro_batches=N`` (BatchNorm sees each slice on its own in both).
"""

from __future__ import annotations

import csv
import logging
import shutil
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
import torch.utils.data
from torch import Tensor, nn

from ..data import FaceData, Preprocess, crop_flip, resize_once
from ..data.photometric import erase, photometric
from ..data.transforms import tta_views
from ..loading import load_model
from ..loading.checkpoint import CheckpointError, save_checkpoint, save_train_state, sole_member
from ..models import FERNet, build
from ..models.ensemble import Ensemble
from ..models.registry import resolve_config
from .distill import Teacher, distillation_loss
from .metrics import classification_report
from .mixing import mix, mix_targets
from .recipes import Recipe
from .targets import log_prior, soft_cross_entropy, soft_targets

__all__ = [
    "BatchMaker",
    "EpochProgress",
    "TrainSet",
    "TrainingInterrupted",
    "evaluate",
    "predict_logits",
    "train",
    "train_one_epoch",
]

log = logging.getLogger(__name__)

PARTIAL = "partial"  # a run's place within an epoch, beside last/ and best/


def predict_logits(
    model: nn.Module,
    images: Tensor,
    pre: Preprocess,
    *,
    tta: str = "none",
    batch_size: int = 256,
    autocast: torch.dtype | None = None,
) -> Tensor:
    """Log-probabilities for resized uint8 images (N, 1, R, R), averaged over the TTA views
    (``none``: the centre crop; ``flip``: and its mirror; ``tencrop``: centre and corners, each mirrored).
    ``autocast`` (e.g. ``torch.bfloat16``) runs the model under :func:`torch.autocast` at that type."""
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    out = []
    with torch.inference_mode(), _autocast(device, autocast):
        for start in range(0, len(images), batch_size):
            views = tta_views(images[start : start + batch_size], pre, tta)
            probs = sum(F.softmax(model(pre.normalize(v).to(device)).float(), dim=1) for v in views) / len(views)
            out.append(probs.clamp_min(1e-12).log().cpu())
    return torch.cat(out)


def _autocast(device: torch.device | str, dtype: torch.dtype | None) -> torch.autocast:
    """Mixed precision at ``dtype`` on ``device``'s type; a no-op when ``dtype`` is None."""
    return torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None)


def _score(
    model: nn.Module, images: Tensor, data: FaceData, pre: Preprocess, tta: str, autocast: torch.dtype | None = None
) -> dict[str, Any]:
    logp = predict_logits(model, images, pre, tta=tta, autocast=autocast)
    report = classification_report(data.labels, logp.argmax(1).numpy(), data.classes)
    report["loss"] = float(F.nll_loss(logp, torch.from_numpy(data.labels)))
    return report


def evaluate(model: nn.Module, data: FaceData, pre: Preprocess, *, tta: str = "none") -> dict[str, Any]:
    """Accuracy, macro-F1, per-class accuracy, confusion matrix and mean loss on a dataset."""
    return _score(model, resize_once(data.images, pre.resize), data, pre, tta)


@dataclass
class TrainSet:
    """What an epoch draws from.

    ``views`` is (V, N, 1, R, R) uint8: V versions of each resized face (V = 1 but for the pipeline
    recipe); every epoch shows each face once, in a version drawn at random. ``targets`` (N, K) are
    the target distributions, ``labels`` (N,) the hard labels (for the training accuracy), and
    ``teacher`` (N, K) the fixed teacher's probabilities, when distilling in ``fixed`` mode.
    """

    views: Tensor
    labels: Tensor
    targets: Tensor
    teacher: Tensor | None = None

    def __post_init__(self) -> None:
        if self.views.dim() == 4:
            self.views = self.views.unsqueeze(0)

    def __len__(self) -> int:
        return self.views.shape[1]


@dataclass
class EpochProgress:
    """How far an epoch has gone: its data order, drawn views and augmentation seed, the steps done,
    their running totals (loss sum, correct, seen) and the seconds spent. Saved mid-epoch so that a
    run killed between two epochs' checkpoints loses minutes, not the epoch (``OUT/partial``)."""

    order: Tensor
    view: Tensor
    seed: int = 0  # step k's augmentation draws from a generator seeded with seed + k
    step: int = 0
    totals: Tensor = field(default_factory=lambda: torch.zeros(3, dtype=torch.float64))
    seconds: float = 0.0

    @classmethod
    def draw(cls, n: int, views: int, generator: torch.Generator) -> EpochProgress:
        """A new epoch over ``n`` faces in ``views`` versions: its order, each face's version and its
        augmentation seed. These are all an epoch draws from ``generator``, so replaying them from the
        run's seed recovers the generator after any epoch (scripts/continue_gpu_run.py)."""
        order = torch.randperm(n, generator=generator)
        view = torch.randint(0, views, (n,), generator=generator) if views > 1 else torch.zeros(n, dtype=torch.long)
        return cls(order, view, int(torch.randint(0, 2**62, (1,), generator=generator)))


class RunExists(CheckpointError):
    """``out`` holds a run (:func:`saved_place`) that training anew would overwrite: resume it, or train elsewhere."""

    def __init__(self, out: str | Path, place: tuple[int, int]) -> None:
        super().__init__(
            f"{out} holds a run (stopped after {place[0]} epochs and {place[1]} steps): resume it, or train elsewhere"
        )
        self.out, self.place = Path(out), place


class TrainingInterrupted(RuntimeError):
    """Training stopped on request (``should_stop``) after saving its place in ``OUT/partial``."""

    def __init__(self, folder: Path, epoch: int, step: int) -> None:
        super().__init__(f"stopped in epoch {epoch + 1} after step {step}; saved to {folder}, --resume continues")
        self.folder, self.epoch, self.step = folder, epoch, step


def _world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 without torch.distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@dataclass(frozen=True)
class _Batch:
    """One step's global batch, augmented: images in [0, 1], target distributions, the fixed
    teacher's (mixed like the targets) and the hard labels."""

    x01: Tensor
    targets: Tensor
    teacher: Tensor | None
    labels: Tensor


def _augmented_batch(data: TrainSet, pre: Preprocess, recipe: Recipe, index: Tensor, view: Tensor, seed: int) -> _Batch:
    """The batch of faces ``index`` (in views ``view``), re-framed, cropped, flipped, degraded,
    erased and mixed with draws from a generator seeded with ``seed`` alone, so that any step's
    batch can be made in any thread, in any order, and again on resume."""
    generator = torch.Generator().manual_seed(seed)
    crops = crop_flip(data.views[view, index], pre.size, generator, recipe.jitter)
    crops = erase(photometric(crops, recipe.photometric, generator), recipe.erasing, generator)
    x01, targets, lam = mix(crops.float().div_(255), data.targets[index], recipe.mixing, generator)
    teacher = None if data.teacher is None else mix_targets(data.teacher[index], lam)
    return _Batch(x01, targets, teacher, data.labels[index])


_Key = tuple[np.ndarray, np.ndarray, int]  # a step's faces, their views and its augmentation seed


class BatchMaker(torch.utils.data.Dataset):
    """Makes one run's step batches (:func:`_augmented_batch` for each key: faces, views, seed),
    in turn, or ahead of the caller in ``workers`` processes: augmentation is CPU work, and the model
    may be on a GPU. The workers are forked once for the whole run (so they share the data) and kept
    between epochs: starting them anew each epoch cost 0.5 s an epoch with 4 and 1.3 s with 15 on the
    2-core machine (benchmarks/batch_workers.py). Each makes two steps ahead; the result does not
    depend on them."""

    def __init__(self, data: TrainSet, pre: Preprocess, recipe: Recipe, workers: int = 0) -> None:
        self.data, self.pre, self.recipe, self.workers = data, pre, recipe, workers
        self._keys: Sequence[_Key] = ()
        self._loader: torch.utils.data.DataLoader | None = None

    def __getitem__(self, key: _Key) -> _Batch:  # in a worker: the key comes from __call__'s list
        index, view, seed = key
        return _augmented_batch(self.data, self.pre, self.recipe, torch.from_numpy(index), torch.from_numpy(view), seed)

    def __call__(self, keys: Sequence[_Key]) -> Iterator[_Batch]:
        """The batches of ``keys``, in order."""
        if self.workers <= 0:
            yield from map(self.__getitem__, keys)
            return
        if self._loader is None:
            self._loader = torch.utils.data.DataLoader(
                self,
                batch_size=None,
                sampler=self,  # iterated in this process at each pass: the keys of the current call
                num_workers=self.workers,
                worker_init_fn=_init_worker,
                multiprocessing_context="fork",
                persistent_workers=True,
            )
        self._keys = keys
        yield from self._loader

    def __iter__(self) -> Iterator[_Key]:  # as the loader's sampler
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def close(self) -> None:
        """Stop the workers (they also stop with the process)."""
        self._loader = None  # the loader's iterator shuts its workers down when it goes

    def __enter__(self) -> BatchMaker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _init_worker(worker_id: int) -> None:
    """One thread per worker; SIGTERM is left to the main process, which saves its place and then
    shuts the workers down (``timeout`` and ``kill -- -PGID`` signal the whole process group)."""
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def train_one_epoch(
    model: nn.Module,
    data: TrainSet,
    pre: Preprocess,
    optimizer: torch.optim.Optimizer,
    recipe: Recipe,
    epoch: int,
    generator: torch.Generator,
    *,
    teacher: Teacher | None = None,
    prior: Tensor | None = None,
    micro_batches: int = 1,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
    autocast: torch.dtype | None = None,
    batches: BatchMaker | None = None,
    on_batch: Callable[[int, int, int, float], None] | None = None,
    progress: EpochProgress | None = None,
    after_step: Callable[[EpochProgress], None] | None = None,
) -> tuple[float, float]:
    """One pass over the training set; returns the mean loss and the training accuracy.

    ``generator`` draws the epoch's data order, views and augmentation seed; step k's augmentation
    draws from its own generator (seed + k), so that ``batches`` (a :class:`BatchMaker` for ``data``,
    ``pre`` and ``recipe``; by default one that makes them in turn) can make the next batches in
    worker processes while the model trains on this one, with the same result. Every rank (and every
    micro-batch) makes the same global batch; each trains on its slice, so the update is that of the
    whole batch. ``progress`` continues an epoch saved part-way; ``after_step`` sees the progress
    after every step (to save it, or to stop by raising).
    """
    model.train()
    rank, world = _world()
    slices = world * micro_batches
    if recipe.batch_size % slices:
        raise ValueError(f"batch size {recipe.batch_size} is not divisible by {world} ranks x {micro_batches}")
    n = len(data)
    steps = n // recipe.batch_size  # drop the ragged last batch (BatchNorm needs > 1 sample)
    if progress is None:
        progress = EpochProgress.draw(n, len(data.views), generator)
    order, view, totals = progress.order, progress.view, progress.totals
    adjust = None if prior is None or not recipe.logit_adjust else (recipe.logit_adjust * prior).to(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    if batches is None:
        batches = BatchMaker(data, pre, recipe)
    elif batches.data is not data or batches.pre != pre or batches.recipe != recipe:
        raise ValueError("batches must be made for this data, preprocessing and recipe")

    def key(step: int) -> _Key:
        index = order[step * recipe.batch_size : (step + 1) * recipe.batch_size]
        return index.numpy(), view[index].numpy(), progress.seed + step

    todo = range(progress.step, steps)
    for step, batch in zip(todo, batches([key(s) for s in todo]), strict=True):
        # determine and set the learning rate (per step, so the schedule is smooth)
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr_at(epoch + step / steps)
        optimizer.zero_grad(set_to_none=True)
        size = recipe.batch_size // slices
        for micro in range(micro_batches):
            part = slice((rank * micro_batches + micro) * size, (rank * micro_batches + micro + 1) * size)
            x = pre.normalize_float(batch.x01[part]).to(device, memory_format=memory_format)
            t = batch.targets[part].to(device)
            sync = micro == micro_batches - 1 or not hasattr(model, "no_sync")
            with nullcontext() if sync else model.no_sync():
                # forward, backward (gradients add up over micro-batches; DDP averages over ranks)
                with _autocast(device, autocast):
                    logits = model(x).float()
                trained = logits if adjust is None else logits + adjust
                if recipe.distill_alpha > 0:
                    if batch.teacher is not None:
                        soft = batch.teacher[part].to(device)
                    elif teacher is not None:
                        soft = teacher.probs(batch.x01[part].to(device), recipe.distill_temperature)
                    else:
                        raise ValueError(f"recipe {recipe.name!r} distils, but no teacher was given")
                    loss = distillation_loss(
                        trained, t, soft, alpha=recipe.distill_alpha, temperature=recipe.distill_temperature
                    )
                else:
                    loss = soft_cross_entropy(trained, t)
                (loss / micro_batches).backward()
            y = batch.labels[part]
            totals += torch.tensor([loss.item() * len(y), (logits.argmax(1).cpu() == y).sum().item(), len(y)])
        optimizer.step()
        progress.step = step + 1
        if on_batch is not None:
            on_batch(epoch, step, steps, loss.item())
        if after_step is not None:
            after_step(progress)
    if world > 1:
        dist.all_reduce(totals)
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])


def _build_model(model_name: str, overrides: dict[str, Any], recipe: Recipe, num_classes: int) -> FERNet:
    if "sfp" in resolve_config(model_name, **overrides).order:
        overrides = {**recipe.sfp_overrides, **overrides}
    return build(model_name, num_classes=num_classes, **overrides)


def _initial_model(
    model_name: str,
    overrides: dict[str, Any],
    recipe: Recipe,
    train_data: FaceData,
    init: str | Path | None,
    new_head: bool,
    init_size: int | None = None,
) -> tuple[FERNet, Recipe, Preprocess]:
    """A fresh model, or one fine-tuned from ``init`` (new head, or its own), and its preprocessing:
    at ``init``'s input size, or at ``init_size`` when given (a fine-tune at another resolution)."""
    num_classes = len(train_data.classes)
    if init is None:
        model = _build_model(model_name, overrides, recipe, num_classes)
        return model, recipe, Preprocess.fit(train_data.images, recipe.input_size)
    base = load_model(init, "torch")
    net = sole_member(base.net)  # default-large: its one network
    if isinstance(net, Ensemble):
        raise ValueError(f"{init} is an ensemble of {len(net.members)} networks; --init starts from one network")
    build_args = {k: v for k, v in net.build_args.items() if k not in ("name", "num_classes")}
    model = build(net.build_args["name"], num_classes=num_classes, **build_args)
    size = init_size or base.preprocess.size
    if new_head:
        state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
        model.load_state_dict(state, strict=False)  # everything but the new head
        pre = Preprocess.fit(train_data.images, size)
    else:
        if base.classes != list(train_data.classes):
            raise ValueError(
                f"{init} was trained on classes {base.classes}, the data has {list(train_data.classes)}; "
                "keeping its head needs the same classes"
            )
        model.load_state_dict(net.state_dict())
        pre = replace(base.preprocess, size=size)  # the same model on the same task: the same normalisation
    return model, replace(recipe, input_size=size), pre


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
    init_size: int | None = None,
    seed: int = 0,
    resume: bool = False,
    views: Sequence[np.ndarray] = (),
    votes: np.ndarray | None = None,
    teacher: Teacher | None = None,
    micro_batches: int = 1,
    device: str | torch.device | None = None,
    channels_last: bool = True,
    autocast: torch.dtype | None = None,
    workers: int = 0,
    data_note: str = "",
    extra_meta: dict[str, Any] | None = None,
    on_batch: Callable[[int, int, int, float], None] | None = None,
    save_every: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Train, evaluate on ``val_data`` after every epoch, checkpoint to ``out/last`` and ``out/best``.

    ``init`` fine-tunes from a checkpoint with a fresh head for ``train_data``'s classes, or with its
    own head when ``new_head`` is false (the classes must then be the same), at ``init``'s input
    size unless ``init_size`` says another. With ``resume`` the run
    continues from ``out/last`` (weights, optimizer, schedule, data order); without it, a run already
    in ``out`` is an error (:func:`saved_place`), never overwritten. ``views`` are other
    versions of the training faces (same shape, e.g. the pipeline views), ``votes`` (N, K) annotator
    votes per face for ``recipe.votes_weight``, ``teacher`` the models to distil from. ``device``
    defaults to the GPU where there is one; ``workers`` processes augment the next batches meanwhile
    (see :func:`train_one_epoch`; the result does not depend on it). ``autocast`` (e.g.
    ``torch.bfloat16``) runs the forward passes, the epochs' scoring included, in mixed precision. Under
    torchrun only rank 0 writes. ``extra_meta`` goes into every checkpoint's metadata. Returns the
    best epoch's metrics.

    Within an epoch, rank 0 saves its place to ``out/partial`` every ``save_every`` seconds of
    ``clock``, and, when ``should_stop()`` turns true (e.g. on SIGTERM), saves it and raises
    :class:`TrainingInterrupted`. ``resume`` continues from ``out/partial`` when it is ahead of
    ``out/last``, and the result is the same as an uninterrupted run's.
    """
    out = Path(out)
    rank, world = _world()
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    torch.manual_seed(seed)
    if len(train_data) < recipe.batch_size:
        raise ValueError(f"{len(train_data)} training images is less than one batch of {recipe.batch_size}")
    if recipe.votes_weight > 0 and votes is None:
        raise ValueError(f"recipe {recipe.name!r} blends in annotator votes: pass votes (edgefer train --ferplus)")
    if recipe.distill_alpha > 0 and teacher is None:
        raise ValueError(f"recipe {recipe.name!r} distils: pass a teacher (edgefer train --teacher)")
    if not resume and (place := saved_place(out)) is not None:  # never train over a run: nothing is lost
        raise RunExists(out, place)
    model, recipe, pre = _initial_model(model_name, overrides, recipe, train_data, init, new_head, init_size)
    generator = torch.Generator().manual_seed(seed)
    start_epoch, best = 0, {"accuracy": -1.0}
    resume_state, progress = None, None
    if resume:
        folder, resume_state = _resume_point(out)
        saved = load_model(folder, "torch")
        model, pre = saved.net, saved.preprocess
        generator.set_state(resume_state["generator"])
        start_epoch, best = resume_state["epoch"], resume_state["best"]
        if "progress" in resume_state:
            progress = EpochProgress(**resume_state["progress"])
        log.info(
            "resuming %s at epoch %d of %d, step %d",
            folder,
            start_epoch + 1,
            recipe.epochs,
            0 if progress is None else progress.step,
        )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
    optimizer = torch.optim.SGD(
        model.parameters(), lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
    )
    if resume_state is not None:
        optimizer.load_state_dict(resume_state["optimizer"])  # momentum buffers too
    trained = nn.parallel.DistributedDataParallel(model) if world > 1 else model

    # the data, once: faces resized a single time, targets as distributions
    images = resize_once(train_data.images, pre.resize)
    if views:
        images = torch.stack([images, *(resize_once(v, pre.resize) for v in views)])
    num_classes = len(train_data.classes)
    targets = soft_targets(
        train_data.labels,
        num_classes,
        votes=votes,
        votes_weight=recipe.votes_weight,
        smoothing=recipe.label_smoothing,
    )
    fixed = None
    if teacher is not None and recipe.teacher_mode == "fixed":
        fixed = _fixed_teacher(teacher, train_data.images, recipe.distill_temperature, out / "teacher.pt", rank)
    train_set = TrainSet(images, torch.from_numpy(train_data.labels), targets, fixed)
    prior = log_prior(train_data.labels, num_classes)
    val_images = resize_once(val_data.images, pre.resize)
    meta_base = {
        "classes": list(train_data.classes),
        "preprocess": pre.as_dict(),
        "recipe": asdict(recipe),
        "data": {"train": train_data.source, "val": val_data.source, "note": data_note},
        "seed": seed,
        "init": None if init is None else str(init),
        "teacher": None if teacher is None else teacher.sources,
        "autocast": None if autocast is None else str(autocast).removeprefix("torch."),
        **(extra_meta or {}),
    }
    log_path = out / "log.csv"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if start_epoch == 0:
            log_path.write_text("epoch,lr,train_loss,train_acc,val_loss,val_acc,val_macro_f1,seconds\n")

    saved_at = clock()

    def after_step(epoch: int, progress: EpochProgress, began: float) -> None:
        nonlocal saved_at
        stop = world == 1 and should_stop is not None and should_stop()
        if rank == 0 and (stop or (save_every is not None and clock() - saved_at >= save_every)):
            state = {"optimizer": optimizer.state_dict(), "generator": generator.get_state(), "best": best}
            progress = replace(progress, seconds=time.perf_counter() - began)
            _save_partial(out, model, {**meta_base, "best": best}, state, epoch, progress)
            saved_at = clock()
        if stop:
            raise TrainingInterrupted(out / PARTIAL, epoch, progress.step)

    with BatchMaker(train_set, pre, recipe, workers) as batches:  # its workers serve every epoch
        for epoch in range(start_epoch, recipe.epochs):
            resumed = 0.0 if progress is None else progress.seconds  # a resumed epoch's time so far
            began = time.perf_counter() - resumed
            train_loss, train_acc = train_one_epoch(
                trained,
                train_set,
                pre,
                optimizer,
                recipe,
                epoch,
                generator,
                teacher=teacher,
                prior=prior,
                micro_batches=micro_batches,
                device=device,
                channels_last=channels_last,
                autocast=autocast,
                batches=batches,
                on_batch=on_batch,
                progress=progress,
                after_step=lambda p, epoch=epoch, began=began: after_step(epoch, p, began),
            )
            if rank == 0:
                report = _score(model, val_images, val_data, pre, recipe.tta, autocast)
                seconds = time.perf_counter() - began
                _log_epoch(log_path, epoch, recipe, train_loss, train_acc, report, seconds)
                metrics = {"epoch": epoch + 1, **{k: report[k] for k in ("accuracy", "macro_f1", "loss", "n")}}
                if report["accuracy"] > best["accuracy"]:
                    best = metrics
                    save_checkpoint(out / "best", model, {**meta_base, "metrics": metrics})
                save_checkpoint(out / "last", model, {**meta_base, "metrics": metrics, "best": best})
                save_train_state(
                    out / "last",
                    {
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "epoch": epoch + 1,
                        "best": best,
                    },
                )
                _drop_partial(out)
                saved_at = clock()  # the epoch's checkpoint is the newest save
            progress = None
            if world > 1:
                dist.barrier()
    return best


def _save_partial(
    out: Path, model: nn.Module, meta: dict[str, Any], state: dict[str, Any], epoch: int, progress: EpochProgress
) -> None:
    """The run's place within an epoch, in ``out/partial``: written whole to ``partial.new`` first
    (its ``train_state.pt`` last), then moved into place, so that a kill at any moment leaves one
    complete copy."""
    new = out / f"{PARTIAL}.new"
    shutil.rmtree(new, ignore_errors=True)
    save_checkpoint(new, model, meta)
    save_train_state(new, {**state, "epoch": epoch, "progress": asdict(progress)})
    shutil.rmtree(out / PARTIAL, ignore_errors=True)
    new.rename(out / PARTIAL)


def _drop_partial(out: Path) -> None:
    for name in (PARTIAL, f"{PARTIAL}.new"):
        shutil.rmtree(out / name, ignore_errors=True)


def _saves(out: Path, *, mmap: bool = False) -> list[tuple[tuple[int, int], bool, Path, dict[str, Any]]]:
    """The run's saved places in ``out`` (last/, partial/, a complete partial.new/): each as
    ((epochs done, steps into the next), whether it is within an epoch, folder, training state).
    ``mmap`` maps the states' tensors instead of reading them (the optimizer's: 90 MB for ResNet18),
    for a caller that only wants the places."""
    saves = []
    for name in ("last", PARTIAL, f"{PARTIAL}.new"):
        path = out / name / "train_state.pt"
        if path.is_file():
            state = torch.load(path, weights_only=False, mmap=mmap)
            ahead = (state["epoch"], state.get("progress", {}).get("step", 0))
            saves.append((ahead, name != "last", out / name, state))
    return saves


def saved_place(out: str | Path) -> tuple[int, int] | None:
    """Where the run in ``out`` stopped: (epochs done, steps into the next), the furthest of its
    saves; None when ``out`` holds no run that ``resume`` could continue."""
    saves = _saves(Path(out), mmap=True)
    return max(s[0] for s in saves) if saves else None


def _resume_point(out: Path) -> tuple[Path, dict[str, Any]]:
    """The folder to resume from and its training state: ``out/partial`` (or a complete
    ``partial.new``) when it is ahead of ``out/last``, else ``out/last``."""
    saves = _saves(out)
    if not saves:
        raise CheckpointError(f"nothing to resume in {out}: no last/ or partial/ with a train_state.pt")
    _, _, folder, state = max(saves, key=lambda c: c[:2])
    return folder, state


def _fixed_teacher(teacher: Teacher, faces: np.ndarray, temperature: float, cache: Path, rank: int) -> Tensor:
    """The teacher's probabilities on every training face, computed once and kept in ``cache``."""
    if cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if (
            saved["sources"] == teacher.sources
            and saved["temperature"] == temperature
            and len(saved["probs"]) == len(faces)
        ):
            return saved["probs"]
    began = time.perf_counter()
    probs = teacher.centre_probs(faces, temperature, progress="teacher" if rank == 0 else None)
    log.info("fixed teacher targets for %d faces in %.0f s", len(faces), time.perf_counter() - began)
    if rank == 0:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"sources": teacher.sources, "temperature": temperature, "probs": probs}, cache)
    return probs


def _log_epoch(
    path: Path, epoch: int, recipe: Recipe, loss: float, acc: float, report: dict[str, Any], seconds: float
) -> None:
    with path.open("a") as f:
        csv.writer(f, lineterminator="\n").writerow(  # one line end throughout, as the header has
            [
                epoch + 1,
                f"{recipe.lr_at(epoch):.6f}",
                f"{loss:.4f}",
                f"{acc:.4f}",
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
        loss,
        acc,
        report["accuracy"],
        seconds,
    )
