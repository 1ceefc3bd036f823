"""Encoded images (PNG, JPEG, ...) on the wire: to and from grayscale uint8 arrays.

Decoding uses the photo reader's decoder (:func:`edgefer.photos.decode_photo`), so a face sent to
the cloud is read exactly as a photo on the device is: 16-bit, palette, transparent and EXIF-rotated
images included. Its bounds (pixels, aspect ratio, smallest side) are checked on the image's header,
before any pixel is decoded.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ..photos import PhotoError, decode_photo, to_gray
from .errors import InvalidInput, PayloadTooLarge

__all__ = ["ImageLimits", "decode_image", "encode_image"]


class ImageLimits:
    """Bounds on an image a client sends; the defaults allow any face photo a camera takes."""

    def __init__(self, max_pixels: int = 4096 * 4096, *, max_aspect: float = 8.0, min_side: int = 8) -> None:
        self.max_pixels, self.max_aspect, self.min_side = max_pixels, max_aspect, min_side


def encode_image(gray: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """A grayscale uint8 array as PNG (lossless) or JPEG (``quality``)."""
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}.get(fmt.lower())
    if fmt is None:
        raise ValueError("image format must be png or jpeg")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {"optimize": True}
    Image.fromarray(np.asarray(gray, dtype=np.uint8)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode_image(data: bytes, limits: ImageLimits | None = None) -> np.ndarray:
    """Grayscale uint8 (H, W) from encoded bytes.

    :class:`PayloadTooLarge` (413) when it has too many pixels, :class:`InvalidInput` (400) when it
    is no image, is corrupt, too small or too elongated."""
    limits = limits or ImageLimits()
    try:
        rgb = decode_photo(
            bytes(data),
            max_pixels=limits.max_pixels,
            max_aspect=limits.max_aspect,
            min_side=limits.min_side,
            name="image",
        )
    except PhotoError as exc:
        error = PayloadTooLarge if exc.reason.startswith("too large") else InvalidInput
        raise error(f"image: {exc.reason}") from None
    return to_gray(rgb)
