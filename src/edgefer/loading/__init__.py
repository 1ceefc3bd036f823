"""Loading models for inference and saving checkpoints: the one place that knows what a model folder is.

:func:`load_model` takes ``default``, ``default-large``, a training checkpoint or an export folder
and a runtime, and returns a :class:`LoadedModel` (``model(x)``, ``stage_names``, ``split``, and a
typed :class:`ModelMeta`). Training writes checkpoints with :func:`save_checkpoint`.
"""

from .checkpoint import (
    CheckpointError,
    build_model,
    checkpoint_digest,
    load_checkpoint,
    make_ensemble,
    round_as_stored,
    save_checkpoint,
    sole_member,
    update_meta,
)
from .exported import ExportedNet, ExportError, Runner
from .model import NAMED, RUNTIME_CHOICES, LoadedModel, ModelMeta, load_model, read_meta, resolve, wrap_model

__all__ = [
    "NAMED",
    "RUNTIME_CHOICES",
    "CheckpointError",
    "ExportError",
    "ExportedNet",
    "LoadedModel",
    "ModelMeta",
    "Runner",
    "build_model",
    "checkpoint_digest",
    "load_checkpoint",
    "load_model",
    "make_ensemble",
    "read_meta",
    "resolve",
    "round_as_stored",
    "save_checkpoint",
    "sole_member",
    "update_meta",
    "wrap_model",
]
