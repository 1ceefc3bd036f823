"""FER datasets as in-memory arrays: FER2013 (CSV or image folders), FER+, CK+ and generic folders.

Every loader returns :class:`FaceData`: grayscale uint8 images (N, H, W), integer labels, the
dataset's class names, and the official splits where the dataset has them. Colour images are
converted to grayscale on load (PIL's ITU-R 601 luma), so every source reaches the model the same
way; :func:`edgefer.data.transforms.to_tensor` repeats the gray channel to 3 channels.

Bad files are never skipped silently: a missing file, wrong columns or a malformed pixel row raise
:class:`DatasetError` naming the file and line.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image

from ..photos import IMAGE_SUFFIXES, PhotoError, read_gray

__all__ = [
    "CKPLUS_CLASSES",
    "FER2013_CLASSES",
    "FER2013_SPLITS",
    "FERPLUS_CLASSES",
    "FERPLUS_VOTE_COLUMNS",
    "DatasetError",
    "FaceData",
    "fer2013_train_val",
    "ferplus_as_fer2013",
    "ferplus_majority",
    "ferplus_votes",
    "load_ckplus",
    "load_ckplus_as_fer2013",
    "load_fer2013",
    "load_ferplus",
    "load_image_folder",
    "load_test_split",
    "read_labels_csv",
    "subject_folds",
]

FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_SPLITS = ("Training", "PublicTest", "PrivateTest")
FERPLUS_CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
CKPLUS_CLASSES = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file (and line)."""


@dataclass
class FaceData:
    images: np.ndarray  # (N, H, W) uint8 grayscale
    labels: np.ndarray  # (N,) int64 class indices
    classes: tuple[str, ...]
    source: str  # where it came from, for checkpoints and reports
    subjects: np.ndarray | None = None  # (N,) subject ids where the dataset has them (CK+)
    votes: np.ndarray | None = field(default=None, repr=False)  # (N, K) annotator votes (FER+)
    files: np.ndarray | None = field(default=None, repr=False)  # (N,) source file per image (folders)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray | slice) -> FaceData:
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            subjects=pick(self.subjects),
            votes=pick(self.votes),
            files=pick(self.files),
        )

    def class_counts(self) -> list[int]:
        return np.bincount(self.labels, minlength=len(self.classes)).tolist()


def _open_text(path: Path) -> io.TextIOBase:
    if not path.is_file():
        raise DatasetError(f"{path}: {'no such file' if not path.exists() else 'not a file'}")
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, row) of a CSV (plain or .gz); every way the file can be broken is a DatasetError
    naming it: truncated or fake gzip, bytes that are not UTF-8, a field over the csv module's limit."""
    line = 1
    try:
        with _open_text(path) as f:
            for row in csv.reader(f):
                yield line, row
                line += 1
    except DatasetError:
        raise
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}:{line}: not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}:{line}: not a well-formed CSV row ({exc})") from None
    except EOFError:
        raise DatasetError(f"{path}: the gzip file is truncated") from None
    except gzip.BadGzipFile as exc:
        raise DatasetError(f"{path}: not a gzip file ({exc})") from None
    except (OSError, zlib.error) as exc:
        raise DatasetError(f"{path}: cannot be read ({exc})") from None


def _check_header(path: Path, header: list[str] | None, expected: Iterable[str]) -> None:
    expected = list(expected)
    if header is None or [h.strip() for h in header[: len(expected)]] != expected:
        found = "nothing" if header is None else ",".join(header)
        found = found if len(found) <= 80 else found[:80] + "..."
        raise DatasetError(f"{path}:1: expected the columns {','.join(expected)}, found {found}")


def load_fer2013(path: str | Path, splits: Iterable[str] | None = None) -> dict[str, FaceData]:
    """FER2013 by split: the Kaggle CSV (``emotion,pixels,Usage``, plain or .gz) or image folders.

    For a CSV the splits are ``Training``, ``PublicTest`` and ``PrivateTest``; a file holding only
    some of them is fine. For the Kaggle folder layout (``train/<class>/*.png``, ``test/<class>/...``)
    the splits are named after the folders. ``splits`` keeps only the named ones.
    """
    path = Path(path)
    data = _fer2013_folders(path) if path.is_dir() else _fer2013_csv(path)
    if splits is not None:
        missing = [s for s in splits if s not in data]
        if missing:
            raise DatasetError(f"{path}: no rows for split(s) {missing}; it holds {sorted(data)}")
        data = {s: data[s] for s in splits}
    return data


def fer2013_train_val(path: str | Path) -> tuple[FaceData, FaceData]:
    """FER2013's Training and PublicTest splits (or the Kaggle folders ``train`` and ``test``)."""
    splits = load_fer2013(path)
    for train_split, val_split in (("Training", "PublicTest"), ("train", "test")):
        if train_split in splits and val_split in splits:
            return splits[train_split], splits[val_split]
    raise DatasetError(f"{path} has splits {sorted(splits)}; need Training+PublicTest or train+test")


def load_test_split(path: str | Path, classes: Sequence[str], split: str | None = None) -> FaceData:
    """Faces to score a model on: a FER2013 split (CSV, .gz or Kaggle folders; default PublicTest or
    test), or a folder with one sub-folder per class of ``classes``."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    if path.is_file() or (path / "train").is_dir() or (path / "test").is_dir():
        splits = load_fer2013(path)
        name = split or next((s for s in ("PublicTest", "test") if s in splits), None)
        if name not in splits:
            raise DatasetError(f"{path} has splits {sorted(splits)}; choose one with --split")
        return splits[name]
    return load_image_folder(path, classes)


def _fer2013_csv(path: Path) -> dict[str, FaceData]:
    images: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[int]] = {}
    rows = _csv_rows(path)
    _check_header(path, next(rows, (1, None))[1], ("emotion", "pixels", "Usage"))
    for line, row in rows:
        if len(row) < 3:
            raise DatasetError(f"{path}:{line}: expected 3 columns (emotion,pixels,Usage), found {len(row)}")
        emotion, pixels, usage = row[0].strip(), row[1], row[2].strip()
        if usage not in FER2013_SPLITS:
            raise DatasetError(f"{path}:{line}: unknown Usage {usage[:40]!r}; expected one of {FER2013_SPLITS}")
        if not (emotion.isascii() and emotion.isdigit()) or int(emotion) >= len(FER2013_CLASSES):
            raise DatasetError(f"{path}:{line}: emotion {emotion[:20]!r} is not a class index 0-6")
        images.setdefault(usage, []).append(_parse_pixels(pixels, path, line))
        labels.setdefault(usage, []).append(int(emotion))
    if not images:
        raise DatasetError(f"{path}: no data rows")
    return {
        split: FaceData(
            np.stack(images[split]), np.asarray(labels[split], dtype=np.int64), FER2013_CLASSES, f"{path}:{split}"
        )
        for split in FER2013_SPLITS
        if split in images
    }


def _parse_pixels(text: str, path: Path, line: int, side: int = 48) -> np.ndarray:
    if len(text) > 8 * side * side:  # "255 " per pixel at most
        raise DatasetError(
            f"{path}:{line}: the pixels field is {len(text)} characters; {side}x{side} pixels need fewer"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy warns (and truncates) on non-numeric text
        try:
            values = np.fromstring(text, dtype=np.int32, sep=" ")
        except (ValueError, DeprecationWarning):
            raise DatasetError(f"{path}:{line}: pixels are not space-separated integers") from None
    if values.size != side * side:
        raise DatasetError(f"{path}:{line}: expected {side * side} pixels, found {values.size}")
    if values.min() < 0 or values.max() > 255:
        raise DatasetError(f"{path}:{line}: pixel values must be 0-255, found {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(side, side)


def _fer2013_folders(root: Path) -> dict[str, FaceData]:
    names = {name: i for i, name in enumerate(FER2013_CLASSES)}
    splits = [d for d in sorted(root.iterdir()) if d.is_dir()]
    if not splits:
        raise DatasetError(f"{root}: expected split folders such as train/ and test/, found none")
    return {split.name: load_image_folder(split, names) for split in splits}


def _read_gray(path: Path) -> np.ndarray:
    try:
        return read_gray(path)
    except PhotoError as exc:
        raise DatasetError(f"{path}: not a readable image ({exc.reason})") from None


def load_image_folder(
    root: str | Path, classes: Mapping[str, int] | Iterable[str], *, size: int | None = None
) -> FaceData:
    """A class-per-sub-folder dataset (RaFD, SFEW, your own) with an explicit class mapping.

    ``classes`` maps folder names to label indices (or lists the folder names in label order);
    folders not in it are an error, so a typo never drops a class. Images of different sizes need
    ``size``: each is then resized to ``size`` x ``size``.
    """
    root = Path(root)
    mapping = dict(classes) if isinstance(classes, Mapping) else {name: i for i, name in enumerate(classes)}
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    folders = [d for d in sorted(root.iterdir()) if d.is_dir()]
    unknown = [d.name for d in folders if d.name not in mapping]
    if unknown:
        raise DatasetError(f"{root}: class folder(s) {unknown} are not in the class mapping {sorted(mapping)}")
    images, labels, files = [], [], []
    for folder in folders:
        for file in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            image = _read_gray(file)
            if size is not None:
                image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
            if images and image.shape != images[0].shape:
                raise DatasetError(f"{file}: size {image.shape} differs from {images[0].shape}; pass size=")
            images.append(image)
            labels.append(mapping[folder.name])
            files.append(str(file))
    if not images:
        raise DatasetError(f"{root}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) under the class folders")
    names = [""] * (max(mapping.values()) + 1)
    for name, index in mapping.items():
        names[index] = name
    return FaceData(
        np.stack(images), np.asarray(labels, dtype=np.int64), tuple(names), str(root), files=np.asarray(files)
    )


FERPLUS_VOTE_COLUMNS = (*FERPLUS_CLASSES, "unknown", "NF")  # NF: not a face


def ferplus_votes(ferplus: str | Path, sizes: Mapping[str, int]) -> dict[str, np.ndarray]:
    """FER+ vote counts (N, 10) per split, in :data:`FERPLUS_VOTE_COLUMNS` order.

    ``sizes`` gives each FER2013 split's number of rows; FER+ must have as many, since it is aligned
    with FER2013 row by row.
    """
    ferplus = Path(ferplus)
    columns = ("Usage", "Image name", *FERPLUS_VOTE_COLUMNS)
    usages, votes = [], []
    rows = _csv_rows(ferplus)
    _check_header(ferplus, next(rows, (1, None))[1], columns)
    for line, row in rows:
        if len(row) != len(columns):
            raise DatasetError(f"{ferplus}:{line}: expected {len(columns)} columns, found {len(row)}")
        if not all(v.strip().isascii() and v.strip().isdigit() for v in row[2:]):
            raise DatasetError(f"{ferplus}:{line}: votes must be integers, found {','.join(row[2:])[:80]}")
        votes.append([int(v) for v in row[2:]])
        usages.append(row[0].strip())
    vote_array = np.asarray(votes, dtype=np.int64).reshape(-1, len(FERPLUS_VOTE_COLUMNS))
    out = {}
    for split, size in sizes.items():
        rows = np.flatnonzero(np.asarray(usages) == split)
        if len(rows) != size:
            raise DatasetError(
                f"{ferplus}: {len(rows)} {split} rows, but the FER2013 file has {size}: not aligned row by row"
            )
        out[split] = vote_array[rows]
    return out


# FER+'s emotions in FER2013's class order; contempt has no FER2013 class, so its votes are left out
_FERPLUS_FOR_FER2013 = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def ferplus_as_fer2013(votes: np.ndarray) -> np.ndarray:
    """FER+ votes (N, 10, :data:`FERPLUS_VOTE_COLUMNS` order) as votes for FER2013's 7 classes (N, 7).

    Contempt, ``unknown`` and ``NF`` (not a face) votes are dropped, so a row can sum to 0.
    """
    columns = [FERPLUS_VOTE_COLUMNS.index(name) for name in _FERPLUS_FOR_FER2013]
    return np.asarray(votes)[:, columns]


def ferplus_majority(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FER2013-class labels from FER+ votes (N, 10) by FERPlus's majority rule: (labels, kept).

    A row is kept when one of FER2013's 7 emotions has more than half of all its votes (contempt,
    unknown and not-a-face votes count in the total, so such faces are dropped).
    """
    votes = np.asarray(votes)
    seven = ferplus_as_fer2013(votes)
    kept = seven.max(1) * 2 > votes.sum(1)
    return seven.argmax(1), kept


def load_ferplus(fer2013: str | Path, ferplus: str | Path, splits: Iterable[str] | None = None) -> dict[str, FaceData]:
    """FER2013 images with FER+ majority-vote labels over 8 emotions (FERPlus rules).

    ``ferplus`` (``fer2013new.csv``) is aligned row by row with the FER2013 CSV. A row is dropped
    when its top vote is ``unknown`` or ``NF`` (not a face) or when no emotion has a strict
    majority (more than half of the votes); the kept rows carry their 8 emotion vote counts in
    ``votes`` for label-distribution training.
    """
    base = _fer2013_csv(Path(fer2013))
    all_votes = ferplus_votes(ferplus, {split: len(data) for split, data in base.items()})
    out = {}
    for split, data in base.items():
        split_votes = all_votes[split]
        top = split_votes.argmax(1)
        keep = (top < len(FERPLUS_CLASSES)) & (split_votes.max(1) * 2 > split_votes.sum(1))
        out[split] = FaceData(
            data.images[keep],
            top[keep],
            FERPLUS_CLASSES,
            f"{ferplus}:{split}",
            votes=split_votes[keep, : len(FERPLUS_CLASSES)],
        )
    if splits is not None:
        out = {s: out[s] for s in splits}
    return out


_CK_NAME = re.compile(r"^S(\d+)_")


def load_ckplus(root: str | Path) -> FaceData:
    """CK+ crops laid out as ``<class>/S<subject>_<sequence>_<frame>.png``; subjects in ``subjects``."""
    data = load_image_folder(root, CKPLUS_CLASSES)
    subjects = []
    for file in map(Path, data.files):
        match = _CK_NAME.match(file.name)
        if match is None:
            raise DatasetError(f"{file}: expected a CK+ name like S010_004_00000017.png")
        subjects.append(int(match.group(1)))
    data.subjects = np.asarray(subjects, dtype=np.int64)
    return data


# CK+'s class names for FER2013's classes; contempt has none
_CKPLUS_FOR_FER2013 = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def load_ckplus_as_fer2013(root: str | Path) -> FaceData:
    """CK+ labelled with FER2013's 7 classes, for scoring a FER2013 model on it without fine-tuning.

    The six shared emotions are kept (contempt, which FER2013 lacks, is left out); a FER2013 model's
    7-way prediction is scored against them, so a face called neutral is simply wrong.
    """
    data = load_ckplus(root)
    keep = np.asarray([CKPLUS_CLASSES[label] in _CKPLUS_FOR_FER2013 for label in data.labels])
    data = data.subset(keep)
    data.labels = np.asarray(
        [FER2013_CLASSES.index(_CKPLUS_FOR_FER2013[CKPLUS_CLASSES[label]]) for label in data.labels], dtype=np.int64
    )
    data.classes = FER2013_CLASSES
    data.source = f"{data.source} (as FER2013 classes, no contempt)"
    return data


def read_labels_csv(path: str | Path, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """A ``file,label`` CSV (labels named as in ``classes``): the file names and the label indices."""
    path = Path(path)
    index = {name: i for i, name in enumerate(classes)}
    files, labels = [], []
    rows = _csv_rows(path)
    _check_header(path, next(rows, (1, None))[1], ("file", "label"))
    for line, row in rows:
        if len(row) < 2:
            raise DatasetError(f"{path}:{line}: expected file,label")
        label = row[1].strip()
        if label not in index:
            raise DatasetError(f"{path}:{line}: unknown label {label[:40]!r}; expected one of {list(classes)}")
        files.append(row[0].strip())
        labels.append(index[label])
    if not files:
        raise DatasetError(f"{path}: no data rows")
    return files, np.asarray(labels, dtype=np.int64)


def subject_folds(subjects: np.ndarray, k: int = 10, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) index pairs with no subject in both; subjects are dealt out at random."""
    unique = np.unique(subjects)
    if k < 2 or k > len(unique):
        raise ValueError(f"need 2 <= k <= {len(unique)} subjects, got k={k}")
    order = np.random.default_rng(seed).permutation(unique)
    fold_of = {int(s): i % k for i, s in enumerate(order)}
    fold = np.asarray([fold_of[int(s)] for s in subjects])
    return [(np.flatnonzero(fold != i), np.flatnonzero(fold == i)) for i in range(k)]
