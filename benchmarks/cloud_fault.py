"""The cloud killed and restarted mid-run: are requests lost, and how soon does the edge come back?

For each strategy (``cloud``, ``split``) an ``EdgeRunner`` sends faces one after another to
``edgefer serve`` in its own process. After ``--kill-at`` requests the server is killed (SIGKILL);
``--down`` seconds later it is started again on the same port. Reported per strategy:

* ``lost``: requests that raised or got no answer (each must get exactly one answer);
* ``fallbacks``: requests answered on the device while the cloud was away;
* ``back_after_s``: from the moment the restarted server answers its readiness probe until the first
  request the cloud answers again (the edge's recovery: its background probe, every 0.5 s).

    .venv/bin/python benchmarks/cloud_fault.py --json docs/cloud_fault.json
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

from edgefer.edge import EdgeRunner
from edgefer.loading import load_model
from edgefer.serving.process import ServerProcess, free_port


def run(strategy: str, checkpoint: str, port: int | None, requests: int, kill_at: int, down: float) -> dict:
    model = load_model(checkpoint)
    faces = np.random.default_rng(0).integers(0, 256, (16, 48, 48), dtype=np.uint8)
    args = ["--checkpoint", checkpoint, "--no-large", "--threads", "1", "--max-delay-ms", "0"]
    port = port or free_port()
    first, again = ServerProcess(args, port=port), ServerProcess(args, port=port)
    restart = threading.Timer(down, again.start)
    first.start()
    answers, lost = [], 0
    try:
        with EdgeRunner(model, strategy=strategy, cloud_url=first.url, timeout=1.0) as runner:
            for i in range(requests):
                if i == kill_at:  # killed, and `down` seconds later the same server on the same port
                    first.stop()
                    restart.start()
                try:
                    prediction = runner.predict(faces[i % len(faces)])
                    answers.append((time.monotonic(), prediction.fallback))
                except Exception:
                    lost += 1
                time.sleep(0.01)
    finally:
        first.stop()
        if restart.is_alive():
            restart.join()
        again.stop()
    ready_at = again.ready_at if again.ready_at is not None else float("inf")
    back = next((t for t, fell_back in answers[kill_at:] if not fell_back and t > ready_at), None)
    return {
        "strategy": strategy,
        "requests": requests,
        "answered": len(answers),
        "lost": lost,
        "fallbacks": sum(f for _, f in answers),
        "back_after_s": None if back is None else round(back - ready_at, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--kill-at", type=int, default=100)
    parser.add_argument("--down", type=float, default=3.0, help="seconds the server stays down")
    parser.add_argument("--port", type=int, help="default: a free port")
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = [run(s, args.checkpoint, args.port, args.requests, args.kill_at, args.down) for s in ("cloud", "split")]
    for r in rows:
        print(f"{r['strategy']:<6} answered {r['answered']}/{r['requests']}, lost {r['lost']}, "
              f"fallbacks {r['fallbacks']}, back on the cloud {r['back_after_s']} s after it was ready")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"down_s": args.down, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
