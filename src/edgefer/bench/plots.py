"""Figures people would rather look at than read (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_confusion", "plot_offload"]


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path, title: str = "") -> Path:
    """A row-normalised confusion matrix (true class per row) with counts and percentages."""
    counts = np.asarray(matrix)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(classes), 0.8 + 0.8 * len(classes)))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, j in np.ndindex(counts.shape):
        color = "white" if rates[i, j] > 0.6 else "black"
        ax.text(j, i, f"{rates[i, j]:.0%}\n{counts[i, j]}", ha="center", va="center", fontsize=7, color=color)
    ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


STRATEGY_STYLE = {
    "edge": ("tab:blue", "o"),
    "cloud": ("tab:orange", "s"),
    "split": ("tab:green", "^"),
    "auto": ("black", "x"),
}


def plot_offload(records: list[dict], path: str | Path, trace: list[dict] | None = None, title: str = "") -> None:
    """Latency against bandwidth, one panel per device (the paper's Fig. 8), plus auto's trace."""
    devices = list(dict.fromkeys(r["device"] for r in records))
    panels = len(devices) + (1 if trace else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    for ax, device in zip(axes[0], devices, strict=False):
        for strategy in dict.fromkeys(r["strategy"] for r in records):
            rows = sorted((r for r in records if r["device"] == device and r["strategy"] == strategy),
                          key=lambda r: r["bandwidth_kbps"])  # fmt: skip
            color, marker = STRATEGY_STYLE.get(strategy, ("gray", "."))
            ax.plot([r["bandwidth_kbps"] for r in rows], [r["median_ms"] for r in rows], marker=marker, color=color,
                    label=strategy, linestyle="--" if strategy == "auto" else "-")  # fmt: skip
        ax.set_title(device)
        ax.set_xlabel("bandwidth (KB/s)")
        ax.set_ylabel("median latency per face (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend()
    if trace:
        ax = axes[0][-1]
        xs = [t["request"] for t in trace]
        ax.plot(xs, [t["total_ms"] for t in trace], color="black", marker="x", linestyle="-", label="auto latency")
        change = next((t["request"] for t in trace if t["bandwidth_kbps"] != trace[0]["bandwidth_kbps"]), None)
        if change is not None:
            ax.axvline(change - 0.5, color="red", linestyle=":",
                       label=f"{trace[0]['bandwidth_kbps']:.0f} -> {trace[-1]['bandwidth_kbps']:.0f} KB/s")  # fmt: skip
        plans = list(dict.fromkeys(t["plan"] for t in trace))
        twin = ax.twinx()
        twin.scatter(xs, [plans.index(t["plan"]) for t in trace], s=8, color="tab:purple")
        twin.set_yticks(range(len(plans)), plans, fontsize=7)
        ax.set_title("auto while the link degrades")
        ax.set_xlabel("request")
        ax.set_ylabel("latency (ms)")
        ax.legend(loc="upper left", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
