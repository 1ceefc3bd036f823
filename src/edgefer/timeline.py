"""Per-person results of a video: a summary per track and a timeline of each track's expressions.

Both read the per-frame table :func:`edgefer.analyze_video` returns (one row per face per frame:
``frame``, ``time``, ``track_id``, ``label`` and one column per class).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

__all__ = ["plot_timeline", "summarize_tracks"]


def summarize_tracks(frames: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """One row per track: first and last time, duration, frames seen, dominant expression and the share of each."""
    columns = ["track_id", "first_s", "last_s", "duration_s", "frames", "dominant", *(f"share_{c}" for c in classes)]
    tracked = frames.dropna(subset=["track_id"]) if len(frames) else frames
    if not len(tracked):
        return pd.DataFrame(columns=columns)
    rows = []
    for track_id, group in tracked.groupby("track_id", sort=True):
        shares = group["label"].value_counts(normalize=True)
        rows.append(
            {
                "track_id": int(track_id),
                "first_s": float(group["time"].min()),
                "last_s": float(group["time"].max()),
                "duration_s": float(group["time"].max() - group["time"].min()),
                "frames": len(group),
                "dominant": shares.idxmax(),
                **{f"share_{c}": float(shares.get(c, 0.0)) for c in classes},
            }
        )
    return pd.DataFrame(rows, columns=columns)


def plot_timeline(frames: pd.DataFrame, classes: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Each track's expression probabilities over time, one panel per track (stacked areas), as a PNG.
    A video without faces gives a figure that says so."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracked = frames.dropna(subset=["track_id"]) if len(frames) else frames
    tracks = sorted(tracked["track_id"].unique()) if len(tracked) else []
    fig, axes = plt.subplots(max(len(tracks), 1), 1, figsize=(9, 1.8 * max(len(tracks), 1) + 0.6), squeeze=False)
    colors = plt.get_cmap("tab10").colors
    for ax, track_id in zip(axes[:, 0], tracks, strict=False):
        group = tracked[tracked["track_id"] == track_id].sort_values("time")
        ax.stackplot(group["time"], *(group[c] for c in classes), labels=list(classes), colors=colors[: len(classes)])
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {int(track_id)}")
        ax.margins(x=0)
    if not tracks:
        axes[0, 0].text(0.5, 0.5, "no faces in this video", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    else:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
        axes[-1, 0].set_xlabel("time (s)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
