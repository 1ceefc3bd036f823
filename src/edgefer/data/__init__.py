"""Datasets (FER2013, FER+, CK+, folders) and the shared image preparation."""

from .datasets import (
    CKPLUS_CLASSES,
    FER2013_CLASSES,
    FER2013_SPLITS,
    FERPLUS_CLASSES,
    FERPLUS_VOTE_COLUMNS,
    DatasetError,
    FaceData,
    ferplus_votes,
    load_ckplus,
    load_fer2013,
    load_ferplus,
    load_image_folder,
    subject_folds,
)
from .transforms import Jitter, Preprocess, augment, center, reframe, resize_once

__all__ = [
    "CKPLUS_CLASSES",
    "FER2013_CLASSES",
    "FER2013_SPLITS",
    "FERPLUS_CLASSES",
    "FERPLUS_VOTE_COLUMNS",
    "DatasetError",
    "FaceData",
    "Jitter",
    "Preprocess",
    "augment",
    "center",
    "ferplus_votes",
    "load_ckplus",
    "load_fer2013",
    "load_ferplus",
    "load_image_folder",
    "reframe",
    "resize_once",
    "subject_folds",
]
