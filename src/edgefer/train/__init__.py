"""Training, evaluation, metrics and checkpoints."""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .engine import RECIPES, Recipe, evaluate, predict_logits, train
from .metrics import classification_report

__all__ = [
    "RECIPES",
    "CheckpointError",
    "Recipe",
    "classification_report",
    "evaluate",
    "load_checkpoint",
    "predict_logits",
    "save_checkpoint",
    "train",
]
