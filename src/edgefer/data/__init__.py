"""Datasets (FER2013, FER+, CK+, folders) and the shared image preparation."""

from .datasets import (
    CKPLUS_CLASSES,
    FER2013_CLASSES,
    FER2013_SPLITS,
    FERPLUS_CLASSES,
    DatasetError,
    FaceData,
    load_ckplus,
    load_fer2013,
    load_ferplus,
    load_image_folder,
    subject_folds,
)
from .transforms import Preprocess, augment, center, resize_once

__all__ = [
    "CKPLUS_CLASSES",
    "FER2013_CLASSES",
    "FER2013_SPLITS",
    "FERPLUS_CLASSES",
    "DatasetError",
    "FaceData",
    "Preprocess",
    "augment",
    "center",
    "load_ckplus",
    "load_fer2013",
    "load_ferplus",
    "load_image_folder",
    "resize_once",
    "subject_folds",
]
