"""Time one SGD training step (forward, backward, update) per model x input size x execution mode.

Modes: ``eager``, ``channels_last`` (NHWC memory format for the model and the batch), ``compile``
(``torch.compile``, default inductor backend), ``compile+channels_last`` and ``bf16+channels_last``
(the forward pass under ``torch.autocast("cpu", torch.bfloat16)``; measured fast for ResNet18 on a
CPU with AMX, docs/RESULTS.md "bfloat16 on AMX"). Each row is the median
of ``--steps`` timed steps after ``--warmup`` untimed ones (compilation happens in the warm-up), on
random data, batch 128 unless given. Rows are measured round-robin, one step of each at a time, so
a change in machine load hits every row alike.

    .venv/bin/python benchmarks/train_step.py --models shufflenet_asp_sfp:96,resnet18:96 --json docs/train_step.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from edgefer.models import build

MODES = ("eager", "channels_last", "compile", "compile+channels_last", "bf16+channels_last")


def make_step(name: str, size: int, mode: str, batch: int):
    overrides = {"wavelet": "haar"} if "sfp" in name else {}
    model = build(name, **overrides).train()
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 7, (batch,))
    if "channels_last" in mode:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model, dynamic=False) if mode.startswith("compile") else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    dtype = torch.bfloat16 if mode.startswith("bf16") else torch.float32

    def step() -> float:
        began = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            loss = F.cross_entropy(forward(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - began

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="shufflenet_asp_sfp:96,resnet18:96", help="NAME:PX,...")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for spec in args.models.split(","):
        name, size = spec.split(":")
        for mode in args.modes.split(","):
            rows.append(
                {"model": name, "input": int(size), "mode": mode, "step": make_step(name, int(size), mode, args.batch)}
            )
    for row in rows:
        for _ in range(args.warmup):
            row["step"]()
    times: dict[int, list[float]] = {i: [] for i in range(len(rows))}
    for _ in range(args.steps):
        for i, row in enumerate(rows):
            times[i].append(row["step"]())

    print(f"threads {args.threads}, batch {args.batch}, median of {args.steps} steps (round-robin)")
    print(f"{'model':<22}{'px':>4}  {'mode':<24}{'ms/step':>9}{'vs eager':>10}{'min/epoch':>11}")
    out = []
    for i, row in enumerate(rows):
        ms = 1000 * statistics.median(times[i])
        eager = (
            next(
                1000 * statistics.median(times[j])
                for j, r in enumerate(rows)
                if r["model"] == row["model"] and r["input"] == row["input"] and r["mode"] == "eager"
            )
            if "eager" in args.modes.split(",")
            else ms
        )
        epoch_min = ms * (28709 // args.batch) / 60000
        print(f"{row['model']:<22}{row['input']:>4}  {row['mode']:<24}{ms:>9.0f}{eager / ms:>9.2f}x{epoch_min:>11.2f}")
        out.append(
            {k: row[k] for k in ("model", "input", "mode")}
            | {"ms_per_step": round(ms, 1), "speedup": round(eager / ms, 3)}
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "batch": args.batch, "steps": args.steps, "rows": out}, f, indent=2)


if __name__ == "__main__":
    main()
