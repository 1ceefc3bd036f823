"""Parameters, MACs and batch-1 CPU latency of models, eager PyTorch and ONNX Runtime (Table 4).

Latency is measured round-robin: every round times a few calls of each model in turn, so machine
noise (this is a shared 2-core box) lands on all models alike, and ratios between models are taken
from one run. Every model is built from the same seed; torchvision initialises the whole backbone
before the attention modules are made, so the layers a full model shares with its bare backbone get
identical weights, and the comparison differs only in the attention. Eager and ONNX Runtime are
measured in separate phases, so that one runtime's idle worker threads never compete with the other's,
and ONNX Runtime sessions do not spin while idle, for the same reason.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..models import build
from ..onnxrt import export_onnx, ort_session

__all__ = [
    "ProfileRow",
    "count_macs",
    "count_params",
    "peak_memory_mb",
    "profile_models",
    "time_interleaved",
]


@dataclass
class ProfileRow:
    model: str
    params: int
    macs: int
    eager_ms: float
    ort_ms: float | None
    eager_ratio: float | None = None  # latency / the bare backbone's, when it was measured too
    ort_ratio: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, example: torch.Tensor) -> int:
    """Multiply-accumulates of one forward pass, by ``torch.utils.flop_counter`` (FLOPs / 2)."""
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(example)
    return counter.get_total_flops() // 2


def time_interleaved(
    calls: dict[str, Callable[[], object]], *, rounds: int = 60, per_round: int = 5, warmup: int = 10
) -> dict[str, float]:
    """Median seconds per call of each function, timing them round-robin."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            for _ in range(per_round):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def profile_models(
    names: Iterable[str],
    *,
    input_size: int = 224,
    threads: int = 2,
    seed: int = 0,
    rounds: int = 60,
    per_round: int = 5,
    onnx: bool = True,
    progress: Callable[[str], None] = lambda message: None,
) -> list[ProfileRow]:
    """Profile registered models at batch 1 and ``input_size`` px, all in one run."""
    names = list(names)
    torch.set_num_threads(threads)
    example = torch.randn(1, 3, input_size, input_size)
    models = {}
    for name in names:
        torch.manual_seed(seed)
        models[name] = build(name).eval()
    progress("counting parameters and MACs")
    counts = {name: (count_params(m), count_macs(m, example)) for name, m in models.items()}

    progress("timing eager PyTorch")
    with torch.inference_mode():
        eager = time_interleaved(
            {name: (lambda m=m: m(example)) for name, m in models.items()}, rounds=rounds, per_round=per_round
        )

    ort_times: dict[str, float] = {}
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            sessions = {}
            for name, model in models.items():
                progress(f"exporting {name} to ONNX")
                path = export_onnx(model, example, Path(tmp) / f"{name}.onnx", dynamic_batch=False)
                # Sessions take turns, so none may keep its threads spinning (see ort_session).
                sessions[name] = ort_session(path, threads=threads, spin=False)
            feed = example.numpy()
            progress("timing ONNX Runtime")
            ort_times = time_interleaved(
                {name: (lambda s=s: s.run(None, {"input": feed})) for name, s in sessions.items()},
                rounds=rounds,
                per_round=per_round,
            )

    rows = []
    for name in models:
        params, macs = counts[name]
        rows.append(ProfileRow(name, params, macs, eager[name] * 1e3, ort_times[name] * 1e3 if onnx else None))
    by_name = {row.model: row for row in rows}
    for row in rows:
        base = by_name.get(models[row.model].config.backbone)
        if base is not None:
            row.eager_ratio = row.eager_ms / base.eager_ms
            if row.ort_ms is not None and base.ort_ms is not None:
                row.ort_ratio = row.ort_ms / base.ort_ms
    return rows


_PEAK_MEMORY = r"""
import json, re, sys
import onnxruntime, openvino, torch
from edgefer.loading import load_model

def hwm():  # the process's own peak RSS (getrusage's maxrss would include the parent's, from fork)
    with open("/proc/self/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) / 1024

before = hwm()
model = load_model(sys.argv[1], sys.argv[2], 1)
dtype = torch.float16 if sys.argv[3] == "fp16" and sys.argv[2] == "torch" else torch.float32
net = model.net.to(dtype)
size = model.preprocess.size
with torch.no_grad():
    for _ in range(10):
        net(torch.randn(1, 3, size, size, dtype=dtype))
print(json.dumps(hwm() - before))
"""


def peak_memory_mb(path: str, runtime: str, precision: str = "fp32") -> float:
    """How much a fresh process's peak RSS grows to load and run a model 10 times (MB), the libraries
    (Python, torch, the runtimes) imported first and not counted."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY, path, runtime, precision], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def paused(pids: Iterable[int]) -> Iterator[None]:
    """Stop these processes (SIGSTOP) for the duration, e.g. training that would share the cores with a
    measurement, and resume them (SIGCONT) after, whatever happens."""
    import os
    import signal

    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def parse_pids(text: str | None) -> list[int]:
    """``"12,34"`` -> [12, 34]; empty or None -> []."""
    return [int(p) for p in (text or "").split(",") if p.strip()]
