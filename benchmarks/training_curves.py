"""Training runs side by side: each run's per-epoch log (``OUT/log.csv``, as ``edgefer train`` writes it) as
curves of training loss and validation accuracy, and a table of where each ended.

    .venv/bin/python benchmarks/training_curves.py "seed 0=docs/training_gpu_strong_resnet18_96.csv" \\
        "seed 1=runs/long/resnet18_96_seed1/log.csv" --plot docs/resnet18_96_seeds.png

A run is ``NAME=CSV`` (or a CSV, named by its file). The table gives, per run: epochs logged, the last
epoch's training loss and validation accuracy, the best validation accuracy and its epoch, and the hours
the epochs took (the ``seconds`` column). The validation column is what the run validated on: all of
PublicTest for runs on this machine, its first 1,000 faces for the GPU machine's runs (RESULTS.md,
"On a GPU machine"), so curves from the two are comparable in shape, not point for point.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

COLUMNS = ("epoch", "train_loss", "val_acc", "seconds")


def read_runs(specs: list[str]) -> dict[str, pd.DataFrame]:
    """``NAME=CSV`` (or ``CSV``) -> the run's log, checked for the columns the curves need."""
    runs = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        try:
            log = pd.read_csv(path)
        except (OSError, ValueError) as exc:  # pandas' parser errors are ValueErrors
            raise SystemExit(f"{path}: not readable as a CSV ({exc})") from None
        missing = [c for c in COLUMNS if c not in log.columns]
        if missing:
            raise SystemExit(f"{path}: not an edgefer training log (no {', '.join(missing)})")
        runs[name or Path(path).stem] = log
    return runs


def summary(runs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    rows = []
    for name, log in runs.items():
        best = log.loc[log["val_acc"].idxmax()]
        last = log.iloc[-1]
        rows.append({
            "run": name, "epochs": int(last["epoch"]), "train_loss": last["train_loss"], "val_acc": last["val_acc"],
            "best_val_acc": best["val_acc"], "best_epoch": int(best["epoch"]), "hours": log["seconds"].sum() / 3600,
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("run")


def plot(runs: dict[str, pd.DataFrame], path: Path) -> None:
    fig, (loss, acc) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
    for name, log in runs.items():
        loss.plot(log["epoch"], log["train_loss"], label=name)
        acc.plot(log["epoch"], 100 * log["val_acc"], label=name)
    loss.set(xlabel="epoch", ylabel="training loss (with the recipe's targets)", title="training loss")
    acc.set(xlabel="epoch", ylabel="validation accuracy (%)", title="validation accuracy (the recipe's TTA)")
    for ax in (loss, acc):
        ax.grid(alpha=0.3)
    acc.legend(fontsize="small")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=CSV or CSV: a training run's log.csv")
    parser.add_argument("--plot", type=Path, help="write the curves as a PNG")
    parser.add_argument("--json", type=Path, help="write the table as JSON")
    args = parser.parse_args()
    runs = read_runs(args.runs)
    table = summary(runs)
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.plot:
        plot(runs, args.plot)
    if args.json:
        args.json.write_text(table.reset_index().to_json(orient="records", indent=2))


if __name__ == "__main__":
    main()
