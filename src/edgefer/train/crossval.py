"""Subject-disjoint k-fold cross-validation (CK+), fine-tuning from a checkpoint in every fold.

Each fold trains for the recipe's fixed number of epochs and is scored by its **last** epoch: the
held-out fold is the only data not trained on, so choosing the best epoch on it would report a
test set that also selected the model.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ..data import FaceData, subject_folds
from .engine import saved_place, train
from .recipes import Recipe

__all__ = ["cross_validate"]


def cross_validate(
    data: FaceData,
    out: str | Path,
    *,
    recipe: Recipe,
    init: str | Path | None = None,
    model_name: str = "shufflenet_asp_sfp",
    overrides: dict[str, Any] | None = None,
    folds: int = 10,
    seed: int = 0,
    resume: bool = False,
) -> dict[str, Any]:
    """Train one model per fold; returns per-fold last-epoch accuracy and their mean and std.

    With ``resume``, folds that finished are kept and an interrupted fold continues from its last
    epoch, so a long run survives being stopped.
    """
    if data.subjects is None:
        raise ValueError(f"{data.source}: cross-validation needs subject ids (load CK+ with load_ckplus)")
    out = Path(out)
    results = []
    for i, (train_index, test_index) in enumerate(subject_folds(data.subjects, k=folds, seed=seed)):
        fold_dir = out / f"fold{i:02d}"
        place = saved_place(fold_dir) if resume else None  # a fold stopped within its first epoch too
        if place is None or place < (recipe.epochs, 0):
            train(
                model_name,
                data.subset(train_index),
                data.subset(test_index),
                fold_dir,
                recipe=recipe,
                overrides=overrides,
                init=init,
                seed=seed + i,
                resume=place is not None,
                data_note=f"fold {i + 1}/{folds}, subject-disjoint, seed {seed}",
            )
        metrics = json.loads((fold_dir / "last" / "model.json").read_text())["metrics"]
        results.append({"fold": i + 1, "n": len(test_index), **{k: metrics[k] for k in ("accuracy", "macro_f1")}})
    accuracies = [r["accuracy"] for r in results]
    summary = {
        "folds": results,
        "mean_accuracy": statistics.fmean(accuracies),
        "std_accuracy": statistics.pstdev(accuracies),
        "n": len(data),
        "init": None if init is None else str(init),
        "recipe": recipe.name,
        "epochs": recipe.epochs,
    }
    (out / "crossval.json").write_text(json.dumps(summary, indent=2))
    return summary
