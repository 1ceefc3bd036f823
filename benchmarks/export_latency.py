"""Batch-1 latency and memory of exported models (`edgefer export` folders), per runtime and threads.

Latency: all exports are loaded into one process per thread count, warmed up, and timed round-robin
(--rounds rounds of --calls calls of each model in turn), so that the machine's noise falls on all
of them alike; the median per model is reported. Memory: each export is loaded and run in a fresh
subprocess, and its peak is how much its peak RSS (VmHWM) grew (Python, torch and the runtime
libraries are imported first and not counted).

    .venv/bin/python benchmarks/export_latency.py exports/onnx-fp32 exports/onnx-int8 ... --threads 1,2
"""

from __future__ import annotations

import argparse
import json

import torch

from edgefer.bench.profiling import peak_memory_mb, time_interleaved
from edgefer.loading import load_model


def runtime_of(folder: str) -> tuple[str, dict]:
    with open(f"{folder}/export.json") as f:
        sidecar = json.load(f)
    return ("openvino" if sidecar["format"] == "openvino" else "onnxruntime"), sidecar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("exports", nargs="+")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--json")
    args = parser.parse_args()
    memory = {}
    for folder in args.exports:
        runtime, _ = runtime_of(folder)
        memory[folder] = peak_memory_mb(folder, runtime, "fp32")
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        models = {}
        for folder in args.exports:
            runtime, sidecar = runtime_of(folder)
            model = load_model(folder, runtime, threads)
            size = model.preprocess.size
            models[folder] = (model.net, torch.randn(1, 3, size, size), sidecar)
        calls = {folder: (lambda m=model, x=x: m(x)) for folder, (model, x, _) in models.items()}
        medians = time_interleaved(calls, rounds=args.rounds, per_round=args.calls, warmup=20)
        for folder, (_, _, sidecar) in models.items():
            row = {"export": folder, "format": sidecar["format"], "precision": sidecar["precision"], "threads": threads}
            row |= {"median_ms": round(1000 * medians[folder], 3), "peak_mb": round(memory[folder], 1)}
            rows.append(row)
            print(f"{row['format']:<9}{row['precision']:<6}{threads:>3} threads {row['median_ms']:7.2f} ms"
                  f"  peak +{row['peak_mb']:5.0f} MB", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
