"""Markdown tables of an `edgefer offload-bench --json` file: median ms per strategy and bandwidth,
the best fixed strategy in bold, auto's ratio to it, and the share of requests where auto ran the
best strategy's plan.

    .venv/bin/python benchmarks/offload_tables.py docs/offload.json
"""

from __future__ import annotations

import argparse
import json

from edgefer.edge.planner import FIXED_PLANS

FIXED_PLAN = {strategy: plan.name for strategy, plan in FIXED_PLANS.items()}


def tables(records: list[dict]) -> str:
    lines = []
    rates = sorted({r["bandwidth_kbps"] for r in records})
    for device in dict.fromkeys(r["device"] for r in records):
        lines.append(f"| {device}, KB/s | " + " | ".join(f"{b:g}" for b in rates) + " |")
        lines.append("|---|" + "---:|" * len(rates))
        cells: dict[str, list[str]] = {s: [] for s in ("edge", "cloud", "split", "auto")}
        same_plan = []
        for b in rates:
            row = {r["strategy"]: r for r in records if r["device"] == device and r["bandwidth_kbps"] == b}
            best = min((s for s in row if s != "auto"), key=lambda s: row[s]["median_ms"])
            for s in cells:
                if s not in row:
                    cells[s].append("")
                elif s == "auto":
                    ratio = row[s]["median_ms"] / row[best]["median_ms"]
                    cells[s].append(f"{row[s]['median_ms']:.1f} ({ratio:.2f}x)")
                    plans = row[s]["plans"]
                    same_plan.append(f"{plans.get(FIXED_PLAN[best], 0) / sum(plans.values()):.0%}")
                else:
                    text = f"{row[s]['median_ms']:.1f}"
                    cells[s].append(f"**{text}**" if s == best else text)
        for s, values in cells.items():
            lines.append(f"| {s} | " + " | ".join(values) + " |")
        lines.append("| auto ran the best plan | " + " | ".join(same_plan) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench_json", help="what `edgefer offload-bench --json` wrote")
    with open(parser.parse_args().bench_json) as f:
        print(tables(json.load(f)["records"]))
