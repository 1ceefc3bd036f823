"""Encoded images (PNG, JPEG, ...) on the wire: to and from grayscale uint8 arrays."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InvalidInput

__all__ = ["decode_image", "encode_image"]

MAX_PIXELS = 4096 * 4096


def encode_image(gray: np.ndarray, fmt: str, quality: int = 90) -> bytes:
    """A grayscale uint8 array as PNG (lossless) or JPEG (``quality``)."""
    fmt = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG"}.get(fmt.lower())
    if fmt is None:
        raise ValueError("image format must be png or jpeg")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt == "JPEG" else {"optimize": True}
    Image.fromarray(np.asarray(gray, dtype=np.uint8)).save(buffer, format=fmt, **options)
    return buffer.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """Grayscale uint8 (H, W) from encoded bytes; InvalidInput when it is no image or far too large."""
    try:
        image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInput(f"not a decodable image: {exc}") from None
    with image:
        if image.width * image.height > MAX_PIXELS:
            raise InvalidInput(f"image of {image.width}x{image.height} is larger than {MAX_PIXELS} pixels")
        try:
            return np.asarray(image.convert("L"))
        except OSError as exc:  # truncated or corrupt data
            raise InvalidInput(f"not a decodable image: {exc}") from None
