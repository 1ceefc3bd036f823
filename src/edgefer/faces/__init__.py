"""Faces in photos: detection (RetinaFace, dlib, Haar) and alignment to FER2013-like crops."""

from .align import FER_SIZE, align_face, to_gray
from .detectors import DETECTORS, DetectorUnavailable, Face, FaceDetector, get_detector

__all__ = [
    "DETECTORS",
    "FER_SIZE",
    "DetectorUnavailable",
    "Face",
    "FaceDetector",
    "align_face",
    "get_detector",
    "to_gray",
]
