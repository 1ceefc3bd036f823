"""Accuracy, size, params/MACs, batch-1 latency and memory of checkpoints x runtimes x precisions (issue 6).

For every checkpoint (the default model and its pruned versions, from `edgefer prune`) this exports
ONNX and OpenVINO at FP32, FP16 and INT8 (static, calibrated on --calibration-size FER2013 Training
faces), and measures each of them and eager PyTorch at FP32 and FP16:

* accuracy on FER2013 PublicTest, without flip TTA (one forward pass per face, as deployed);
* size of the model file(s): safetensors for PyTorch, .onnx or .xml + .bin for the exports;
* params and MACs of the checkpoint (torch.utils.flop_counter, at its input size);
* median batch-1 latency at each thread count. Models of one runtime family are loaded together and
  timed round-robin (--rounds rounds of --calls calls each), so the machine's noise falls on all of
  them alike; eager PyTorch is timed in its own phase, so that its OpenMP threads never spin while
  an ONNX Runtime or OpenVINO model is being timed;
* peak memory: the growth of the maximum RSS from loading and running the model, in a fresh process
  with the libraries already imported.

It also times the split parts (edge head, cloud part, edge tail) of the first checkpoint in each
runtime at FP32, for the edge-cloud benchmark.

    .venv/bin/python benchmarks/compression_table.py --data ../shared/data/fer2013/fer2013.csv.gz \\
        default runs/pruned25/last runs/pruned50/last --out exports/table --json docs/compression.json
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefer.bench.profiling import count_macs, count_params, peak_memory_mb, time_interleaved
from edgefer.data import FaceData, load_fer2013
from edgefer.export import calibration_faces, export_model
from edgefer.loading import load_model, resolve
from edgefer.train import evaluate


class Half(nn.Module):
    """A PyTorch model run in FP16 (weights and activations), fed and returning FP32."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).half().eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def file_mb(folder: Path, sidecar: dict) -> float:
    files = [folder / name for name in sidecar["parts"].values()]
    files += [f.with_suffix(".bin") for f in files if f.suffix == ".xml"]
    return sum(f.stat().st_size for f in files) / 1e6


def torch_mb(net: nn.Module, half: bool, out: Path) -> float:
    from safetensors.torch import save_file

    state = {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in net.state_dict().items()}
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, out / "model.safetensors")
    return (out / "model.safetensors").stat().st_size / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders, or 'default'")
    parser.add_argument("--data", required=True, help="FER2013 CSV: PublicTest scores, Training calibrates")
    parser.add_argument("--out", default="exports/table", help="where the exports are written")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--calibration-size", type=int, default=300)
    parser.add_argument("--limit", type=int, help="score only the first N PublicTest faces (a quick try)")
    parser.add_argument("--pause", default="", help="PIDs to SIGSTOP while timing, e.g. a training run")
    parser.add_argument("--json")
    parser.add_argument("--plot", help="accuracy against latency, as a PNG")
    parser.add_argument("--replot", help="only draw --plot from this JSON (written by an earlier run)")
    args = parser.parse_args()
    if args.replot:
        plot(json.loads(Path(args.replot).read_text())["rows"], args.plot)
        return
    threads_list = [int(t) for t in args.threads.split(",")]
    out = Path(args.out)

    splits = load_fer2013(args.data, splits=["Training", "PublicTest"])
    train, test = splits["Training"], splits["PublicTest"]
    if args.limit:
        test = FaceData(test.images[: args.limit], test.labels[: args.limit], test.classes, test.source)
    faces = calibration_faces(train.images, args.calibration_size)  # as `edgefer export --calibration`

    rows: list[dict] = []
    variants: list[tuple[dict, str, str]] = []  # (row, runtime, path or checkpoint)
    for index, checkpoint in enumerate(args.checkpoints):
        loaded = load_model(checkpoint, "torch")
        net, meta, pre = loaded.net, loaded.meta.as_dict(), loaded.preprocess
        name = "default" if checkpoint == "default" else Path(checkpoint).parent.name or Path(checkpoint).name
        example = torch.zeros(1, 3, pre.size, pre.size)
        base = {
            "model": name,
            "checkpoint": str(resolve(checkpoint)),
            "ratio": loaded.meta.extra.get("pruned", {}).get("ratio", 0.0),
            "params": count_params(net),
            "macs": count_macs(net, example),
        }
        for runtime, precision in [("torch", "fp32"), ("torch", "fp16")]:
            model = net if precision == "fp32" else Half(net)
            row = {**base, "runtime": runtime, "precision": precision}
            row["size_mb"] = torch_mb(net, precision == "fp16", out / name / f"torch-{precision}")
            row["accuracy"] = evaluate(model, test, pre)["accuracy"]
            rows.append(row)
            variants.append((row, runtime, str(resolve(checkpoint))))
        for fmt in ("onnx", "openvino"):
            runtime = "openvino" if fmt == "openvino" else "onnxruntime"
            for precision in ("fp32", "fp16", "int8"):
                folder = out / name / f"{fmt}-{precision}"
                sidecar = export_model(net, meta, folder, fmt=fmt, precision=precision, faces=faces)
                model = load_model(folder, runtime).net
                row = {**base, "runtime": runtime, "precision": precision, "size_mb": file_mb(folder, sidecar)}
                row["accuracy"] = evaluate(model, test, pre)["accuracy"]
                rows.append(row)
                variants.append((row, runtime, str(folder)))
                acc, mb = row["accuracy"], row["size_mb"]
                print(f"{name:<10}{runtime:<12}{precision:<5} acc {acc:.4f}  {mb:.2f} MB", flush=True)
        if index == 0:
            for fmt in ("onnx", "openvino"):
                export_model(net, meta, out / name / f"{fmt}-fp32-split", fmt=fmt, split_after="stage2", faces=faces)

    paused = [int(pid) for pid in args.pause.split(",") if pid]
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    try:
        split_rows = measure(rows, variants, out, threads_list, args.rounds, args.calls)
    finally:
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
    first = rows[0]["model"]
    ref = next(r for r in rows if (r["model"], r["runtime"], r["precision"]) == (first, "onnxruntime", "fp32"))
    for row in rows:
        for threads in threads_list:
            row[f"speedup_{threads}t"] = round(ref[f"ms_{threads}t"] / row[f"ms_{threads}t"], 3)
        row["size_ratio"] = round(row["size_mb"] / ref["size_mb"], 3)
        row["accuracy_delta_pt"] = round(100 * (row["accuracy"] - ref["accuracy"]), 2)
    _print_tables(rows, split_rows, threads_list)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "split": split_rows}, indent=2))
    if args.plot:
        plot(rows, args.plot)


def plot(rows: list[dict], path: str) -> None:
    """Accuracy against 1-thread latency: one colour per model, one marker per runtime, labelled by precision."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    colours = {model: f"C{i}" for i, model in enumerate(models)}
    markers = {"torch": "s", "onnxruntime": "o", "openvino": "^"}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, torch_too in zip(axes, (True, False), strict=True):
        for r in rows:
            if r["runtime"] == "torch" and not torch_too:
                continue
            ax.scatter(r["ms_1t"], 100 * r["accuracy"], c=colours[r["model"]], marker=markers[r["runtime"]], s=40)
            ax.annotate(r["precision"], (r["ms_1t"], 100 * r["accuracy"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.set_xlabel("batch-1 latency, 1 thread (ms)")
        ax.set_title("all runtimes" if torch_too else "ONNX Runtime and OpenVINO")
        ax.grid(alpha=0.3)
    axes[0].set_xscale("log")
    axes[0].set_ylabel("FER2013 PublicTest accuracy (%), no TTA")
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colours.items()]
    handles += [plt.Line2D([], [], color="grey", marker=k, ls="", label=rt) for rt, k in markers.items()]
    axes[1].legend(handles=handles, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure(
    rows: list[dict],
    variants: list[tuple[dict, str, str]],
    out: Path,
    threads_list: list[int],
    rounds: int,
    per_round: int,
) -> list[dict]:
    """Peak memory and latency of every variant (into its row); returns the split parts' latency rows."""
    for row, runtime, path in variants:
        row["peak_mb"] = round(peak_memory_mb(path, runtime, row["precision"]), 1)
    split_rows: list[dict] = []
    first = rows[0]["model"]
    for threads in threads_list:
        torch.set_num_threads(threads)
        for family in ("torch", "exports"):
            calls: dict[str, Callable[[], object]] = {}
            keyed: dict[str, dict] = {}
            for i, (row, runtime, path) in enumerate(variants):
                if (runtime == "torch") != (family == "torch"):
                    continue
                loaded = load_model(path, runtime, threads)
                model = Half(loaded.net) if runtime == "torch" and row["precision"] == "fp16" else loaded.net.eval()
                x = torch.randn(1, 3, loaded.preprocess.size, loaded.preprocess.size)
                calls[str(i)] = (lambda m=model, x=x: m(x)) if runtime != "torch" else _no_grad(model, x)
                keyed[str(i)] = row
            # the split parts of the first checkpoint, timed beside the whole models
            for key, (call, info) in _split_parts(out / first, variants[0][2], family, threads).items():
                calls[key] = call
                keyed[key] = info
            for key, seconds in time_interleaved(calls, rounds=rounds, per_round=per_round, warmup=20).items():
                ms = 1000 * seconds
                if key.isdigit():
                    keyed[key][f"ms_{threads}t"] = round(ms, 3)
                else:
                    split_rows.append({**keyed[key], "threads": threads, "ms": round(ms, 3)})
            print(f"timed {family} at {threads} threads", flush=True)
    return split_rows


def _no_grad(model: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def call() -> object:
        with torch.no_grad():
            return model(x)

    return call


def _split_parts(folder: Path, checkpoint: str, family: str, threads: int) -> dict[str, tuple[Callable, dict]]:
    """Calls timing the edge head, cloud part and edge tail alone, each fed its real input."""
    from edgefer.loading.exported import read_export

    chains: dict[str, list[Callable[[np.ndarray | torch.Tensor], object]]] = {}
    if family == "torch":
        loaded = load_model(checkpoint, "torch")
        chains["torch"] = list(loaded.split(after="stage2"))
        size = loaded.preprocess.size
    else:
        for fmt in ("onnx", "openvino"):
            runners, sidecar = read_export(folder / f"{fmt}-fp32-split", threads=threads)  # numpy in, numpy out
            chains["openvino" if fmt == "openvino" else "onnxruntime"] = list(runners.values())
            size = sidecar["preprocess"]["size"]
    out = {}
    for runtime, chain in chains.items():
        h: np.ndarray | torch.Tensor = torch.randn(1, 3, size, size)
        if runtime != "torch":
            h = h.numpy()
        for part, step in zip(("edge_head", "cloud", "edge_tail"), chain, strict=True):
            info = {"runtime": runtime, "precision": "fp32", "part": part}
            if runtime == "torch":
                out[f"{runtime}/{part}"] = (_no_grad(step, h), info)
                with torch.no_grad():
                    h = step(h)
            else:
                out[f"{runtime}/{part}"] = ((lambda s=step, h=h: s(h)), info)
                h = step(h)
    return out


def _print_tables(rows: list[dict], split_rows: list[dict], threads_list: list[int]) -> None:
    ms_head = " | ".join(f"{t} thr ms" for t in threads_list)
    head = "model | runtime | precision | accuracy | vs ORT FP32 | size MB | params | MMACs"
    print(f"\n| {head} | {ms_head} | speedup | peak MB |")
    print("|---|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(threads_list) + "---:|---:|")
    for r in rows:
        ms = " | ".join(f"{r[f'ms_{t}t']:.2f}" for t in threads_list)
        speed = " / ".join(f"{r[f'speedup_{t}t']:.2f}x" for t in threads_list)
        print(
            f"| {r['model']} | {r['runtime']} | {r['precision']} | {r['accuracy']:.2%} "
            f"| {r['accuracy_delta_pt']:+.2f} pt "
            f"| {r['size_mb']:.2f} | {r['params']:,} | {r['macs'] / 1e6:.1f} | {ms} | {speed} | +{r['peak_mb']:.0f} |"
        )
    print("\n| runtime | part | " + " | ".join(f"{t} thr ms" for t in threads_list) + " |")
    print("|---|---|" + "---:|" * len(threads_list))
    for runtime in dict.fromkeys(r["runtime"] for r in split_rows):
        for part in ("edge_head", "cloud", "edge_tail"):
            ms = [next(r["ms"] for r in split_rows if (r["runtime"], r["part"], r["threads"]) == (runtime, part, t))
                  for t in threads_list]  # fmt: skip
            print(f"| {runtime} | {part} | " + " | ".join(f"{m:.2f}" for m in ms) + " |")


if __name__ == "__main__":
    main()
