"""Does a model score better at another test resolution or crop than the one it was trained at (FixRes)?

Each model scores FER2013 PublicTest (flip TTA) at several input sizes (each from a resize of size / 0.875,
as in training: ``--sizes``), and at its own input size with other crop ratios (``--ratios``: the face resized
to size / ratio, then the centre size x size cut). Training crops are random with scale jitter, so the apparent
object size at test time may not be the one the network saw most (Touvron et al. 2019, "Fixing the train-test
resolution discrepancy"); this measures it instead of assuming it. A model is a checkpoint folder or a shipped
name; an ensemble (default-large) is scored as its one network.

    .venv/bin/python benchmarks/resolution.py default default-large --threads 1 \\
        --json docs/resolution.json --plot docs/resolution.png
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from edgefer.data import load_test_split, resize_once
from edgefer.loading import load_model
from edgefer.loading.checkpoint import sole_member
from edgefer.train import predict_logits
from edgefer.train.metrics import classification_report

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def grid(own: int, sizes: list[int], ratios: list[float]) -> list[tuple[int, int]]:
    """(input size, resize) pairs: each size at the training crop ratio 0.875, then ``own`` at each ratio."""
    pairs = [(s, round(s / 0.875)) for s in sizes] + [(own, round(own / r)) for r in ratios]
    return sorted(set(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="checkpoint folders or shipped names (default, default-large)")
    parser.add_argument("--data", type=Path, default=SHARED / "fer2013" / "fer2013.csv.gz")
    parser.add_argument("--sizes", type=int, nargs="+", default=[88, 96, 104, 112, 120, 128])
    parser.add_argument("--ratios", type=float, nargs="+", default=[1.0, 0.92, 0.83])
    parser.add_argument("--tta", default="flip", choices=["none", "flip", "tencrop"])
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    for spec in args.models:
        model = load_model(spec, "torch")
        net = sole_member(model.net)
        test = load_test_split(args.data, model.classes)
        own = model.preprocess.size
        for size, resize in tqdm(grid(own, args.sizes, args.ratios), desc=spec, unit="size"):
            pre = replace(model.preprocess, size=size)
            logp = predict_logits(net, resize_once(test.images, resize), pre, tta=args.tta)
            report = classification_report(test.labels, logp.argmax(1).numpy(), test.classes)
            rows.append(
                {"model": spec, "size": size, "resize": resize, "crop": round(size / resize, 3), "trained_size": own,
                 "accuracy": report["accuracy"], "macro_f1": report["macro_f1"]}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    best = table.loc[table.groupby("model")["accuracy"].idxmax()]
    as_trained = np.isclose(table["crop"], 0.875, atol=0.01)  # the resize of training: size / 0.875, rounded
    own_rows = table[(table["size"] == table["trained_size"]) & as_trained]
    for spec in args.models:
        b, o = best[best.model == spec].iloc[0], own_rows[own_rows.model == spec]
        trained = f"{o.accuracy.iloc[0]:.2%} as trained" if len(o) else "its own size not in the grid"
        print(f"{spec}: best {b.accuracy:.2%} at {b['size']} px from {b.resize} px; {trained}")
    if args.json:
        args.json.write_text(json.dumps({"tta": args.tta, "data": str(args.data), "rows": rows}, indent=2))
    if args.plot:
        plot(table, args.plot)


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for (spec, frame), colour in zip(table.groupby("model", sort=False), plt.cm.tab10.colors, strict=False):
        at_875 = frame[np.isclose(frame["crop"], 0.875, atol=0.01)].sort_values("size")  # as in training
        ax.plot(at_875["size"], 100 * at_875["accuracy"], "o-", color=colour, label=f"{spec} (crop 0.875)")
        own = frame[frame["size"] == frame["trained_size"]]
        ax.scatter(own["size"], 100 * own["accuracy"], marker="x", color=colour, label=f"{spec}, other crops")
    ax.set_xlabel("test input size (px)")
    ax.set_ylabel("FER2013 PublicTest accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
