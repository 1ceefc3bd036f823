"""Cloud-server throughput and latency with 1, 4 and 16 concurrent clients, with and without batching.

Each client is a thread with its own keep-alive connection sending the paper's split requests
(an FP16 Stage2 map to ``split-stage2``) back to back for a fixed time. Batching configurations run
one after the other on the same server process and checkpoint.

    .venv/bin/python benchmarks/serving_batching.py --checkpoint default --seconds 10
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import httpx
import numpy as np
import torch

from edgefer.loading import load_model
from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models
from edgefer.wire.codec import encode_feature
from edgefer.wire.protocol import Message, encode_message


def client_loop(url: str, body: bytes, headers: dict, stop_at: float, latencies: list[float]) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            response = client.post("/v2/models/split-stage2/infer", content=body, headers=headers)
            response.raise_for_status()
            latencies.append((time.perf_counter() - start) * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint, "torch")
    pre = model.preprocess
    head, _, _ = model.split()
    with torch.inference_mode():
        feature = head(torch.zeros(1, 3, pre.size, pre.size)).numpy() + np.float32(0.1)
    body, headers = encode_message(
        Message([encode_feature("feature", feature, "fp16")], parameters={"binary_data_output": True}), kind="inputs"
    )
    print(f"{'batching':<22} {'clients':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'passes/req':>10}")
    for max_batch, delay in ((1, 0.0), (8, 2.0), (16, 5.0)):
        plane = DataPlane(served_models(model), max_batch_size=max_batch, max_delay_ms=delay)
        with BackgroundServer(create_app(plane)) as server:
            batcher = plane.models["split-stage2"].batcher
            for clients in map(int, args.clients.split(",")):
                passes, requests = batcher.forward_passes, batcher.requests
                latencies: list[list[float]] = [[] for _ in range(clients)]
                stop_at = time.perf_counter() + args.seconds
                threads = [
                    threading.Thread(target=client_loop, args=(server.url, body, headers, stop_at, latencies[i]))
                    for i in range(clients)
                ]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                flat = sorted(v for lat in latencies for v in lat)
                p99 = flat[min(len(flat) - 1, int(0.99 * len(flat)))]
                ratio = (batcher.forward_passes - passes) / max(batcher.requests - requests, 1)
                label = "none" if max_batch == 1 else f"max {max_batch}, {delay:g} ms"
                print(
                    f"{label:<22} {clients:>7} {len(flat) / args.seconds:>8.1f} "
                    f"{statistics.median(flat):>8.2f} {p99:>8.2f} {ratio:>10.2f}"
                )


if __name__ == "__main__":
    main()
