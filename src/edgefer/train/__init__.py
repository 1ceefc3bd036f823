"""Training, evaluation, metrics and checkpoints."""

from ..loading.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .engine import RunExists, TrainingInterrupted, TrainSet, evaluate, predict_logits, saved_place, train
from .metrics import classification_report
from .recipes import RECIPES, Recipe, recipe_from_meta

__all__ = [
    "RECIPES",
    "CheckpointError",
    "Recipe",
    "RunExists",
    "TrainSet",
    "TrainingInterrupted",
    "classification_report",
    "evaluate",
    "load_checkpoint",
    "predict_logits",
    "recipe_from_meta",
    "save_checkpoint",
    "saved_place",
    "train",
]
