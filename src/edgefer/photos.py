"""Reading photos for the user-facing commands: any common format, orientation and mode, or a clear error.

:func:`read_photo` returns an upright RGB uint8 array whatever the file holds: EXIF-rotated JPEGs
are turned upright, grayscale and 16-bit images become RGB, transparent images are laid on white,
and animated files give their first frame. A file that is missing, empty, truncated, not an image,
or absurdly large (a decompression bomb) raises :class:`PhotoError` naming the file and the reason,
so a batch can report it and carry on.
"""

from __future__ import annotations

import errno
import io
import os
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "PhotoError",
    "decode_photo",
    "display_name",
    "iter_photos",
    "read_gray",
    "read_photo",
    "sample_photos",
    "to_gray",
]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
MAX_PIXELS = 100_000_000  # 100 MP: a 12000 x 8000 photo reads; a decompression bomb does not


class PhotoError(ValueError):
    """A file (or buffer) that could not be read as a photo; str() is '<file>: <reason>'."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{display_name(path)}: {reason}")
        self.path, self.reason = str(path), reason


def _decode(
    source: Path | io.BytesIO, name: str | Path, max_pixels: int, max_aspect: float | None, min_side: int
) -> np.ndarray:
    """The one decoder: header checks (size, shape) before any pixel is decoded, then upright RGB."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise PhotoError(name, f"too large: {width}x{height} pixels (limit {max_pixels:,})")
                if min(width, height) < min_side:
                    raise PhotoError(name, f"too small: {width}x{height} pixels (at least {min_side} a side)")
                if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
                    raise PhotoError(
                        name, f"too elongated: {width}x{height} pixels (aspect ratio limit {max_aspect:g})"
                    )
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))
    except PhotoError:
        raise
    except UnidentifiedImageError:
        raise PhotoError(name, "not an image, or a format Pillow cannot read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(name, f"too large: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:  # truncated or corrupt data
        raise PhotoError(name, f"corrupt or truncated image ({exc})") from None


def decode_photo(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_aspect: float | None = None,
    min_side: int = 1,
    name: str = "<image>",
) -> np.ndarray:
    """An upright RGB uint8 image (H, W, 3) from encoded bytes (PNG, JPEG, ...); :class:`PhotoError`
    when it is no image, is corrupt, or breaks a bound (checked on the header, before decoding)."""
    if not data:
        raise PhotoError(name, "empty")
    return _decode(io.BytesIO(data), name, max_pixels, max_aspect, min_side)


def read_photo(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An upright RGB uint8 image (H, W, 3) from an image file."""
    path = Path(path)
    if not path.is_file():
        raise PhotoError(path, _why_not_a_file(path))
    if path.stat().st_size == 0:
        raise PhotoError(path, "empty file")
    return _decode(path, path, max_pixels, None, 1)


def _why_not_a_file(path: Path) -> str:
    if path.is_symlink():
        try:
            target = path.resolve(strict=True)
        except (RuntimeError, OSError) as exc:  # RuntimeError: Python 3.11's "Symlink loop"
            if "loop" in str(exc).lower() or getattr(exc, "errno", None) == errno.ELOOP:
                return "a symbolic link loop"
            return f"a broken symbolic link (to {os.readlink(path)})"
        return f"a symbolic link to {target}, which is not a file"
    return "no such file" if not path.exists() else "not a file"


def display_name(path: str | Path) -> str:
    """A file name as printable text: bytes that are not UTF-8 (surrogate escapes) shown as \\xNN."""
    return str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> grayscale uint8 (H, W): ITU-R 601 luma, as FER2013's faces."""
    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def read_gray(path: str | Path, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A grayscale uint8 image (H, W) from an image file."""
    return to_gray(read_photo(path, max_pixels))


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> RGB uint8; transparency over white, 16-bit scaled to 8."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        gray = np.clip(array / top * 255, 0, 255).round().astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def iter_photos(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Files named directly (whatever their suffix), and image files inside folders, recursively and sorted.

    Links to folders are not followed (so a link loop cannot recurse); a link with an image's name is
    yielded even when it is broken or loops, so that :func:`read_photo` reports it instead of it
    vanishing from the batch."""
    for path in map(Path, paths):
        if path.is_dir():
            found = []
            for folder, _, files in os.walk(path, followlinks=False):
                found += [Path(folder) / f for f in files if Path(f).suffix.lower() in IMAGE_SUFFIXES]
            yield from sorted(found)
        else:
            yield path  # read_photo reports it if it is missing or not an image


def sample_photos() -> list[Path]:
    """Photos the project may ship: NASA's public-domain portrait of Eileen Collins (as in scikit-image)
    and matplotlib's sample photo of Grace Hopper (US Navy, public domain), which comes with matplotlib."""
    from matplotlib import cbook

    return [
        Path(__file__).parent / "samples" / "astronaut.jpg",
        Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
    ]
