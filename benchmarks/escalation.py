"""Confidence-gated escalation: system accuracy against the share of faces sent to the cloud's larger model.

On FER2013 PublicTest (single crop, as the deployed runtime predicts) the edge model and the large
model each score every face once; the policy then answers each face with the edge model unless its
confidence is below a threshold, with the large model otherwise (``edgefer.escalation.policy_curve``,
no server). Reported:

* the curve for each confidence measure (max softmax, margin, entropy), 0-100% escalated, with the
  edge and large models alone, and the accuracy at 25% escalated; a plot (``--plot``);
* calibration held out: the threshold for a target rate taken on one half of PublicTest and applied
  to the other (both ways), with the share really escalated and the accuracy it gave;
* the same curve through the photo pipeline: each face pasted into a canvas, found by RetinaFace and
  aligned (edgefer.faces.synthetic, as ``edgefer predict`` sees a photo), cached in ``--cache``;
* bytes and latency per request: ``EdgeRunner(strategy="escalate")`` against ``edgefer serve`` in
  its own process (serving ``full-large``), for the faces that stay local and those escalated.

    .venv/bin/python benchmarks/escalation.py --large runs/large --data ../shared/data/fer2013/fer2013.csv.gz \\
        --json docs/escalation.json --plot docs/escalation.png
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from edgefer.data import load_fer2013, resize_once
from edgefer.escalation import MEASURES, choose_threshold, confidence, policy_curve
from edgefer.faces.synthetic import cached_pipeline_crops
from edgefer.loading import load_model
from edgefer.serving.process import ServerProcess
from edgefer.train import predict_logits

RATES = np.linspace(0, 1, 21)


def logits_of(source: str, images: np.ndarray) -> np.ndarray:
    model = load_model(source, "torch")
    pre = model.preprocess
    return predict_logits(model.net, resize_once(images, pre.resize), pre, tta="none").numpy()


def curves(edge: np.ndarray, large: np.ndarray, labels: np.ndarray) -> dict:
    out = {
        "edge_alone": float((edge.argmax(1) == labels).mean()),
        "large_alone": float((large.argmax(1) == labels).mean()),
    }
    for measure in MEASURES:
        out[measure] = policy_curve(edge, large, labels, measure, RATES)
    return out


def held_out(edge: np.ndarray, large: np.ndarray, labels: np.ndarray, measure: str, rate: float) -> dict:
    """Threshold from one half's confidences, applied to the other half; both ways, pooled."""
    half = len(labels) // 2
    halves = (np.arange(half), np.arange(half, len(labels)))
    sent = right = 0
    for fit, use in (halves, halves[::-1]):
        threshold, _ = choose_threshold(confidence(edge[fit], measure), rate=rate)
        escalate = confidence(edge[use], measure) < threshold
        sent += int(escalate.sum())
        right += int((np.where(escalate, large[use].argmax(1), edge[use].argmax(1)) == labels[use]).sum())
    return {"measure": measure, "target_rate": rate, "escalated": sent / len(labels), "accuracy": right / len(labels)}


def requests_cost(edge: str, large: str, faces: np.ndarray, threshold: float, measure: str) -> dict:
    from edgefer.edge import EdgeRunner

    with (
        ServerProcess(["--checkpoint", edge, "--large", large, "--threads", "1", "--max-delay-ms", "0"]) as server,
        EdgeRunner(
            edge, strategy="escalate", cloud_url=server.url, escalate_threshold=threshold, confidence_measure=measure
        ) as runner,
    ):
        for face in faces[:10]:
            runner.predict(face)  # warm-up
        breakdowns = [runner.predict(face).breakdown for face in faces]
    kept = [b for b in breakdowns if not b.escalated]
    sent = [b for b in breakdowns if b.escalated]

    def summary(group: list) -> dict:
        if not group:
            return {"n": 0}
        return {
            "n": len(group),
            "median_ms": round(statistics.median(b.total_ms for b in group), 2),
            "p90_ms": round(float(np.percentile([b.total_ms for b in group], 90)), 2),
            "bytes_up": statistics.median(b.bytes_up for b in group),
            "bytes_down": statistics.median(b.bytes_down for b in group),
        }

    every = [b.total_ms for b in breakdowns]
    return {
        "escalated": len(sent) / len(breakdowns),
        "local": summary(kept),
        "escalated_requests": summary(sent),
        "all_median_ms": round(statistics.median(every), 2),
        "mean_bytes_up": round(float(np.mean([b.bytes_up for b in breakdowns])), 1),
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("PublicTest crops", result["crops"])] + (
        [("through the photo pipeline", result["pipeline"])] if result.get("pipeline") else []
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (title, c) in zip(axes[0], panels, strict=True):
        for measure in MEASURES:
            ax.plot(
                [r["escalated"] * 100 for r in c[measure]], [r["accuracy"] * 100 for r in c[measure]], label=measure
            )
        ax.axhline(c["large_alone"] * 100, color="k", ls="--", lw=1, label="large model alone")
        ax.axhline(c["large_alone"] * 100 - 0.5, color="k", ls=":", lw=1, label="0.5 pt below it")
        ax.axhline(c["edge_alone"] * 100, color="gray", ls="--", lw=1, label="edge model alone")
        ax.axvline(25, color="r", lw=0.8, alpha=0.5)
        ax.set_xlabel("faces escalated (%)")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--edge", default="default")
    parser.add_argument("--large", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--rate", type=float, default=0.25)
    parser.add_argument("--requests", type=int, default=400, help="faces sent through a real server")
    parser.add_argument("--cache", type=Path, default=Path("runs/cache/publictest_pipeline_crops.npz"))
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--plot", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    test = load_fer2013(args.data, splits=["PublicTest"])["PublicTest"]
    edge, large = logits_of(args.edge, test.images), logits_of(args.large, test.images)
    result = {"edge": args.edge, "large": args.large, "rate": args.rate}
    result["crops"] = curves(edge, large, test.labels)
    result["held_out"] = [held_out(edge, large, test.labels, m, args.rate) for m in MEASURES]
    if not args.no_pipeline:
        crops, found = cached_pipeline_crops(test.images, args.cache)
        crops = np.where(found[:, None, None], crops, test.images)  # a missed face: its own crop (marked)
        result["pipeline"] = curves(logits_of(args.edge, crops), logits_of(args.large, crops), test.labels)
        result["pipeline"]["found"] = float(found.mean())
    best = max(
        MEASURES, key=lambda m: next(r["accuracy"] for r in result["crops"][m] if abs(r["rate"] - args.rate) < 1e-9)
    )
    threshold, _ = choose_threshold(confidence(edge, best), rate=args.rate)
    result["best_measure"] = best
    result["requests"] = requests_cost(args.edge, args.large, test.images[: args.requests], threshold, best)
    c = result["crops"]
    print(f"edge alone {c['edge_alone']:.2%}, large alone {c['large_alone']:.2%}")
    for m in MEASURES:
        at = next(r for r in c[m] if abs(r["rate"] - args.rate) < 1e-9)
        gap = at["accuracy"] - c["large_alone"]
        print(f"{m:<8} at {args.rate:.0%} escalated: {at['accuracy']:.2%}  ({gap:+.2%} vs the large model)")
    for h in result["held_out"]:
        print(f"held out ({h['measure']}): {h['escalated']:.1%} escalated, accuracy {h['accuracy']:.2%}")
    print(json.dumps(result["requests"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    if args.plot:
        plot(result, args.plot)


if __name__ == "__main__":
    main()
