"""Training, evaluation, metrics and checkpoints."""

from ..loading.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .engine import (
    RECIPES,
    Recipe,
    TrainingInterrupted,
    TrainSet,
    evaluate,
    predict_logits,
    recipe_from_meta,
    train,
)
from .metrics import classification_report

__all__ = [
    "RECIPES",
    "CheckpointError",
    "Recipe",
    "TrainSet",
    "TrainingInterrupted",
    "classification_report",
    "evaluate",
    "load_checkpoint",
    "predict_logits",
    "recipe_from_meta",
    "save_checkpoint",
    "train",
]
