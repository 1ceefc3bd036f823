"""FER2013's Training split (with its FER+ votes) and some PublicTest faces, small enough to travel
to a GPU machine that can receive 64 MiB in all (the device tool's limit), losslessly.

The Kaggle CSV is 84 MB gzipped; raw pixels are 74 MB, and lzma, PNG and lossless WebP all leave
49-55 MB. Here each pixel is replaced by its residual against the median edge detector of
JPEG-LS/LOCO-I (from its left, upper and upper-left neighbours), and the residuals are lzma'd:
Training is 43 MB so. ``unpack`` rebuilds a Kaggle-format CSV that ``edgefer train --data`` reads,
identical to the original's rows.

    python scripts/gpu/fer2013_pack.py pack ../shared/data/fer2013 .gpu-data --val 1000
    python scripts/gpu/fer2013_pack.py unpack .gpu-data /tmp/fer      # on the GPU machine
"""

from __future__ import annotations

import argparse
import csv
import lzma
from pathlib import Path

import numpy as np

SIDE = 48
FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "lc": 0, "lp": 0, "pb": 0}]


def _predict(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector from left ``a``, upper ``b`` and upper-left ``c`` (int16)."""
    low, high = np.minimum(a, b), np.maximum(a, b)
    return np.where(c >= high, low, np.where(c <= low, high, a + b - c))


def encode(pixels: np.ndarray) -> np.ndarray:
    """Residuals (N, 48, 48) uint8 of images (N, 48, 48) uint8."""
    x = pixels.astype(np.int16)
    pred = np.full_like(x, 128)
    pred[:, 0, 1:] = x[:, 0, :-1]  # first row: the left neighbour
    pred[:, 1:, 0] = x[:, :-1, 0]  # first column: the upper one
    pred[:, 1:, 1:] = _predict(x[:, 1:, :-1], x[:, :-1, 1:], x[:, :-1, :-1])
    return ((x - pred) % 256).astype(np.uint8)


def decode(residuals: np.ndarray) -> np.ndarray:
    """Images from :func:`encode`'s residuals, pixel by pixel in raster order, all images at once."""
    r = residuals.astype(np.int16)
    x = np.zeros_like(r)
    for i in range(SIDE):
        for j in range(SIDE):
            if i == 0:
                pred = x[:, 0, j - 1] if j else np.full(len(x), 128, np.int16)
            elif j == 0:
                pred = x[:, i - 1, 0]
            else:
                pred = _predict(x[:, i, j - 1], x[:, i - 1, j], x[:, i - 1, j - 1])
            x[:, i, j] = (pred + r[:, i, j]) % 256
    return x.astype(np.uint8)


def pack(source: Path, out: Path, val: int) -> None:
    from edgefer.data import load_fer2013  # here only: the GPU machine unpacks without edgefer's dependencies

    splits = load_fer2013(source / "fer2013.csv.gz", splits=["Training", "PublicTest"])
    out.mkdir(parents=True, exist_ok=True)
    for name, limit in (("Training", None), ("PublicTest", val)):
        pixels, labels = splits[name].images[:limit], splits[name].labels[:limit]
        assert np.array_equal(decode(encode(pixels[:64])), pixels[:64])
        (out / f"{name}.pixels.xz").write_bytes(lzma.compress(encode(pixels).tobytes(), filters=FILTERS))
        np.save(out / f"{name}.labels.npy", labels.astype(np.uint8))
    with (source / "fer2013new.csv").open(newline="") as f:
        votes = [r for i, r in enumerate(csv.reader(f)) if i == 0 or r[0] == "Training"]
    text = "".join(",".join(r) + "\n" for r in votes)
    (out / "fer2013new.csv.xz").write_bytes(lzma.compress(text.encode(), preset=9))
    print(f"{len(splits['Training'])} Training and {min(val, len(splits['PublicTest']))} PublicTest faces -> {out}")


def unpack(source: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "fer2013.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["emotion", "pixels", "Usage"])
        for name in ("Training", "PublicTest"):
            residuals = np.frombuffer(lzma.decompress((source / f"{name}.pixels.xz").read_bytes()), np.uint8)
            pixels = decode(residuals.reshape(-1, SIDE, SIDE)).reshape(-1, SIDE * SIDE)
            for label, row in zip(np.load(source / f"{name}.labels.npy"), pixels, strict=True):
                writer.writerow([int(label), " ".join(map(str, row)), name])
    (out / "fer2013new.csv").write_bytes(lzma.decompress((source / "fer2013new.csv.xz").read_bytes()))
    print(f"unpacked {source} -> {out}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["pack", "unpack"])
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--val", type=int, default=1000, help="PublicTest faces to take along (pack)")
    args = parser.parse_args()
    pack(args.source, args.out, args.val) if args.command == "pack" else unpack(args.source, args.out)
