"""Accuracy beyond FER2013's own crops: one table over six test sets, per model.

* ``fer2013``: FER2013 PublicTest with its own labels.
* ``ferplus``: the same faces with FER+'s majority labels (faces without a majority among the 7
  classes are left out).
* ``ckplus``: CK+ zero-shot: every CK+48 image of the six classes FER2013 shares (contempt left out),
  scored as the FER2013 model's 7-way prediction, with no fine-tuning.
* ``pipeline``: the PublicTest faces again, each enlarged 2-4x into a 320x320 canvas of its own
  border pixels, found by RetinaFace and cut out by the alignment (``edgefer.faces.synthetic``, as
  benchmarks/end_to_end_accuracy.py's ``replicate`` rows); a missed face counts as wrong. Its gap to
  ``fer2013`` is what detection and alignment cost the model. The crops are cached (``--pipeline-cache``).
* ``ckplus_pipeline``: the CK+ images again, each through the photo pipeline as ``pipeline``'s faces
  (RetinaFace and the alignment frame the face as FER2013 does; CK+48's own crops are tighter): the
  posed photos as the deployed system sees them. Cached (``--ckplus-pipeline-cache``).
* ``wild``: ``shared/data/wild``'s 903 labelled real photos through the deployed photo pipeline
  (RetinaFace, the face nearest the centre, alignment to a 48x48 crop); a photo where no face is
  found counts as wrong. The crops are cached (``--cache``), since they do not depend on the model.

For each: accuracy, macro-F1 (over the classes present) and per-class recall. A model is a
checkpoint folder, ``default``, or several joined by ``+`` (an ensemble: probabilities averaged);
``NAME=MODEL`` names a row. Each model's probabilities on each set are kept in ``--probs-cache``
(keyed by its weights and metadata, the faces and the TTA), so ensembles of models already scored cost nothing.

    .venv/bin/python benchmarks/cross_dataset.py default runs/strong_r18/last 'ens=runs/a/last+runs/b/last' \\
        --json docs/cross_dataset.json --plot docs/cross_dataset.png
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from edgefer.data import (
    FER2013_CLASSES,
    fer2013_train_val,
    ferplus_majority,
    ferplus_votes,
    load_ckplus_as_fer2013,
    read_labels_csv,
    resize_once,
)
from edgefer.faces.synthetic import cached_pipeline_crops
from edgefer.loading import checkpoint_digest, load_model, resolve
from edgefer.train import predict_logits
from edgefer.train.metrics import classification_report

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NO_FACE = "no face"


def member_probs(source: str, images: np.ndarray, tta: str, cache: Path | None) -> np.ndarray:
    """One model's probabilities (N, 7) for raw 48x48 faces; kept in ``cache`` (a folder) when given,
    keyed by the checkpoint's digest, the faces and the TTA, so that ensembles of scored members are free."""
    path = None
    if cache is not None:
        key = hashlib.blake2b(digest_size=16)
        for part in (checkpoint_digest(resolve(source)), tta, str(images.shape), str(images.dtype)):
            key.update(part.encode())
        key.update(np.ascontiguousarray(images).tobytes())
        path = cache / f"{key.hexdigest()}.npy"
        if path.is_file():
            return np.load(path)
    model = load_model(source, "torch")
    pre = model.preprocess
    probs = predict_logits(model.net, resize_once(images, pre.resize), pre, tta=tta).exp().numpy()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path.with_suffix(".tmp.npy"), probs)
        path.with_suffix(".tmp.npy").replace(path)
    return probs


def ensemble_probs(spec: str, images: np.ndarray, tta: str, cache: Path | None = None) -> np.ndarray:
    """Probabilities (N, 7) of one model or an ensemble (``a+b+c``: averaged) for raw 48x48 faces."""
    parts = spec.split("+")
    return sum(member_probs(part, images, tta, cache) for part in parts) / len(parts)


def wild_faces(folder: Path, cache: Path, threads: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from edgefer.faces import get_detector
    from edgefer.faces.photo_faces import photo_face_crops

    files, labels = read_labels_csv(folder / "labels.csv", FER2013_CLASSES)
    detector = get_detector("retinaface", threads=threads)
    crops, found = photo_face_crops([folder / f for f in files], detector, cache=cache, progress="wild photos")
    return crops, labels, found


def report(labels: np.ndarray, probs: np.ndarray, found: np.ndarray | None = None) -> dict:
    predictions = probs.argmax(1)
    classes = list(FER2013_CLASSES)
    if found is not None:  # a photo without a face is a wrong answer of its own class
        predictions = np.where(found, predictions, len(classes))
        classes.append(NO_FACE)
    out = classification_report(labels, predictions, classes)
    out["per_class"].pop(NO_FACE, None)
    return out


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """The test sets' locations, the caches of their detections, and threads."""
    parser.add_argument("--data", type=Path, default=SHARED / "fer2013" / "fer2013.csv.gz")
    parser.add_argument("--ferplus", type=Path, default=SHARED / "fer2013" / "fer2013new.csv")
    parser.add_argument("--ckplus", type=Path, default=SHARED / "ckplus" / "CK+48")
    parser.add_argument("--wild", type=Path, default=SHARED / "wild")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache/wild_crops.npz"))
    parser.add_argument("--pipeline-cache", type=Path, default=Path("runs/cache/publictest_pipeline_crops.npz"))
    parser.add_argument("--ckplus-pipeline-cache", type=Path, default=Path("runs/cache/ckplus_pipeline_crops.npz"))
    parser.add_argument("--threads", type=int)
    parser.add_argument(
        "--probs-cache",
        default="runs/cache/probs",
        help="Folder keeping each model's probabilities per test set (keyed by its checkpoint): '' turns it off.",
    )


def load_sets(args: argparse.Namespace):
    """(FER2013 train, PublicTest, FER+ majority labels and which faces have one, CK+, wild crops, labels, found)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    train, test = fer2013_train_val(args.data)
    plus_labels, plus_kept = ferplus_majority(ferplus_votes(args.ferplus, {"PublicTest": len(test)})["PublicTest"])
    ck = load_ckplus_as_fer2013(args.ckplus)
    wild_crops, wild_labels, wild_found = wild_faces(args.wild, args.cache, args.threads)
    print(f"wild: a face was found in {wild_found.sum()} of {len(wild_found)} photos")
    return train, test, plus_labels, plus_kept, ck, wild_crops, wild_labels, wild_found


def pipeline_crops(args: argparse.Namespace, test_images: np.ndarray, ck_images: np.ndarray):
    """PublicTest's and CK+'s faces as the photo pipeline cuts them out of canvases: (crops, found) for each."""
    pipe_crops, pipe_found = cached_pipeline_crops(test_images, args.pipeline_cache, threads=args.threads)
    print(f"pipeline: RetinaFace found {pipe_found.sum()} of {len(pipe_found)} PublicTest faces in their canvases")
    ck_crops, ck_found = cached_pipeline_crops(ck_images, args.ckplus_pipeline_cache, threads=args.threads)
    print(f"ckplus_pipeline: RetinaFace found {ck_found.sum()} of {len(ck_found)} CK+ faces in their canvases")
    return pipe_crops, pipe_found, ck_crops, ck_found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=["default"], help="[NAME=]CKPT[+CKPT...]")
    add_data_options(parser)
    parser.add_argument("--tta", default="flip", choices=["none", "flip", "tencrop"])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    _, test, plus_labels, plus_kept, ck, wild_crops, wild_labels, wild_found = load_sets(args)
    pipe_crops, pipe_found, ck_crops, ck_found = pipeline_crops(args, test.images, ck.images)

    cache = Path(args.probs_cache) if args.probs_cache else None
    rows, records = [], []
    for spec in args.models:
        name, _, model = spec.rpartition("=")
        name = name or model
        fer_probs = ensemble_probs(model, test.images, args.tta, cache)
        results = {
            "fer2013": report(test.labels, fer_probs),
            "ferplus": report(plus_labels[plus_kept], fer_probs[plus_kept]),
            "pipeline": report(test.labels, ensemble_probs(model, pipe_crops, args.tta, cache), pipe_found),
            "ckplus": report(ck.labels, ensemble_probs(model, ck.images, args.tta, cache)),
            "ckplus_pipeline": report(ck.labels, ensemble_probs(model, ck_crops, args.tta, cache), ck_found),
            "wild": report(wild_labels, ensemble_probs(model, wild_crops, args.tta, cache), wild_found),
        }
        for dataset, r in results.items():
            recall = {c: r["per_class"][c]["accuracy"] for c in FER2013_CLASSES if r["per_class"][c]["n"]}
            rows.append(
                {
                    "model": name,
                    "data": dataset,
                    "n": r["n"],
                    "accuracy": r["accuracy"],
                    "macro_f1": r["macro_f1"],
                    **recall,
                }
            )
            records.append({"model": name, "spec": model, "data": dataset, "tta": args.tta, **r})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(table.to_string(index=False))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps({"tta": args.tta, "wild_found": int(wild_found.sum()), "results": records}, indent=1)
        )
    if args.plot:
        plot(table, args.plot)


def plot(table: pd.DataFrame, path: Path) -> None:
    """Per-class recall, one panel per test set, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(table["data"]))
    models = list(dict.fromkeys(table["model"]))
    cols = min(3, len(datasets))
    rows = -(-len(datasets) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), sharey=True, squeeze=False)
    for ax in axes.flat[len(datasets) :]:
        ax.set_visible(False)
    width = 0.8 / len(models)
    for ax, dataset in zip(axes.flat[: len(datasets)], datasets, strict=True):
        sub = table[table["data"] == dataset].set_index("model")
        classes = [c for c in FER2013_CLASSES if c in sub.columns and sub[c].notna().any()]
        for i, model in enumerate(models):
            row = sub.loc[model]
            ax.bar(
                np.arange(len(classes)) + i * width,
                [row[c] for c in classes],
                width,
                label=f"{model} ({row['accuracy']:.1%})",
            )
        ax.set_xticks(np.arange(len(classes)) + width * (len(models) - 1) / 2, classes, rotation=45)
        ax.set_title(dataset)
        ax.set_ylim(0, 1.3)  # headroom above the bars for the legend
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.legend(fontsize=6, loc="upper center", ncol=2)
    for ax in axes[:, 0]:
        ax.set_ylabel("recall")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
