"""The paper's Table 1 under one recipe: params, MACs, PublicTest accuracy, macro-F1, ONNX Runtime latency.

Every row is a checkpoint trained with the same recipe (``strong``: same data, epochs, augmentation,
FER+ votes; each model at its own input size, which the table gives). Accuracy and macro-F1 are on
FER2013 PublicTest with flip TTA (and ten-crop in its own column); latency is batch-1 ONNX Runtime
at 1 thread, FP32, the median of interleaved rounds (all models timed in turn, so the machine's
noise falls on all alike). ``NAME=CKPT`` names a row; a missing checkpoint is reported as such, and a
run still in training (``CKPT/../log.csv`` short of its recipe's epochs) says how far it is and how many
hours it needs at its median epoch time.

``--previous JSON`` keeps the rows of an earlier table whose checkpoints are gone (a machine that was
not kept): their accuracy columns are carried over as measured then (``"carried_from"`` says from
where), and their latency is timed again here beside the others, on the same architecture with
fresh weights (latency does not depend on the weights' values).

    .venv/bin/python benchmarks/table1.py ShuffleNetV2=runs/long/shufflenet/last \\
        "ShuffleNetV2 + ASP + SFP=runs/long/shufflenet_asp_sfp/last" ResNet18=runs/long/resnet18_48/last \\
        mini-Xception=runs/long/mini_xception_48/last --data ../shared/data/fer2013/fer2013.csv.gz \
        --json docs/table1.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import pandas as pd
import torch

from edgefer.bench.profiling import count_macs, count_params, time_interleaved
from edgefer.data import load_fer2013
from edgefer.loading import load_model
from edgefer.models import build
from edgefer.models.registry import resolve_config
from edgefer.onnxrt import export_onnx, ort_session
from edgefer.train import RECIPES, evaluate


def run_progress(checkpoint: Path) -> dict:
    """How far the run behind ``checkpoint`` (``RUN/last``) is, from ``RUN/log.csv`` and the recipe's epochs:
    epochs done and planned, the median seconds an epoch, and the hours left at that pace."""
    log = checkpoint.parent / "log.csv"
    if not log.is_file():
        return {}
    epochs = pd.read_csv(log)
    planned = None
    if (checkpoint / "model.json").is_file():
        planned = json.loads((checkpoint / "model.json").read_text()).get("recipe", {}).get("epochs")
    done, median = len(epochs), float(epochs["seconds"].median()) if len(epochs) else float("nan")
    left = max((planned or done) - done, 0)
    return {"epochs_done": done, "epochs_planned": planned, "epoch_s_median": round(median, 1),
            "hours_left": round(left * median / 3600, 1)}  # fmt: skip


def progress_text(row: dict) -> str:
    """A run's status for the table, e.g. 'in training: 45/60 epochs, ~3.4 h left at 810 s/epoch'; '' once done."""
    done, planned = row.get("epochs_done"), row.get("epochs_planned")
    if done is None or (planned is not None and done >= planned):
        return ""
    pace = f"{row['epoch_s_median']:.0f} s/epoch"
    return f"in training: {done}/{planned or '?'} epochs, ~{row['hours_left']} h left at {pace}"


def architecture(row: dict) -> torch.nn.Module:
    """A carried-over row's network with fresh weights: its recorded build, or (rows written before
    ``build`` was recorded) its registry name with its recipe's SFP settings where it has SFP."""
    has_sfp = "sfp" in resolve_config(row["arch"]).order  # as edgefer train builds it
    args = row.get("build") or {"name": row["arch"], **(RECIPES[row["recipe"]].sfp_overrides if has_sfp else {})}
    return build(**{"num_classes": 7, **args}).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", help="NAME=CHECKPOINT")
    parser.add_argument("--data", required=True)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("--previous", type=Path, help="an earlier --json: keep its rows whose checkpoints are gone")
    args = parser.parse_args()
    previous = {r["model"]: r for r in json.loads(args.previous.read_text())} if args.previous else {}
    torch.set_num_threads(1)
    test = load_fer2013(args.data, splits=["PublicTest"])["PublicTest"]
    rows, calls = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.rows:
            name, _, path = spec.rpartition("=")
            name = name or path
            progress = run_progress(Path(path))
            if not (Path(path) / "model.json").is_file():
                old = previous.get(name)
                if old is None or old.get("missing") or old.get("epochs_done", 0) < (old.get("epochs_planned") or 0):
                    rows.append({"model": name, "checkpoint": path, "missing": True, **progress})
                    continue
                net, size = architecture(old), old["input"]
                rows.append({**old, "carried_from": old.get("carried_from", str(args.previous))})
            else:
                model = load_model(path, "torch")
                net, size = model.net, model.preprocess.size
                flip = evaluate(net, test, model.preprocess, tta="flip")
                tencrop = evaluate(net, test, model.preprocess, tta="tencrop")
                rows.append({
                    "model": name, "checkpoint": path, "arch": model.meta.name, "build": model.meta.build,
                    "input": size, "params": count_params(net), "macs": count_macs(net, torch.zeros(1, 3, size, size)),
                    "accuracy": round(flip["accuracy"], 4), "accuracy_tencrop": round(tencrop["accuracy"], 4),
                    "macro_f1": round(flip["macro_f1"], 4),
                    "recall": {c: round(v["accuracy"], 4) for c, v in flip["per_class"].items()},
                    "epochs": model.meta.metrics.get("epoch"), "recipe": model.meta.recipe.get("name"), **progress,
                })  # fmt: skip
            example = torch.zeros(1, 3, size, size)
            onnx = export_onnx(net, example, Path(tmp) / f"{len(rows)}.onnx")
            session = ort_session(onnx, 1, spin=False)
            x = example.numpy()
            calls[name] = lambda s=session, x=x: s.run(None, {"input": x})
        medians = time_interleaved(calls, rounds=args.rounds, per_round=10, warmup=20) if calls else {}
    for row in rows:
        if row["model"] in medians:
            row["ort_ms"] = round(1000 * medians[row["model"]], 3)
    print(f"{'model':<28}{'input':>6}{'params':>11}{'MMACs':>9}{'acc':>8}{'10-crop':>9}{'F1':>7}{'ORT ms':>8}")
    for r in rows:
        status = progress_text(r)
        if r.get("missing"):
            print(f"{r['model']:<28} (not trained: {r['checkpoint']}{'; ' + status if status else ''})")
            continue
        print(f"{r['model']:<28}{r['input']:>6}{r['params']:>11,}{r['macs'] / 1e6:>9.1f}{r['accuracy']:>8.2%}"
              f"{r['accuracy_tencrop']:>9.2%}{r['macro_f1']:>7.3f}{r.get('ort_ms', float('nan')):>8.2f}"
              f"{'  ' + status if status else ''}{'  (carried over)' if r.get('carried_from') else ''}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
