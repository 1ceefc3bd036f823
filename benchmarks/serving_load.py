"""Load on the cloud server: requests/s and latency percentiles per model, client count and runtime.

The server is ``edgefer serve`` in its own process (as deployed), on loopback. For each runtime,
model and number of concurrent clients, ``--requests`` requests are sent by that many threads, each
with its own keep-alive connection; the table gives req/s and the p50/p90/p99 latency seen by the
clients, and the median compute time the server reported (so the rest is HTTP, parsing, queueing).

* ``full``: one 48x48 face as UINT8 (what the ``cloud`` strategy sends as raw pixels);
* ``split-stage2``: one INT8 Stage2 map (what the ``split`` strategy sends), zstd-compressed.

``--engines local,ray --replicas 1,2`` measures the same requests on the Ray Serve engine too, with
each replica count (Ray's start-up of about 10-20 s per server is not measured).

``--pause PID,...`` stops those processes (SIGSTOP) while measuring and resumes them after, so that
training in the background does not share the cores with the measurement.

    .venv/bin/python benchmarks/serving_load.py --json docs/serving_load.json --pause $(pgrep -d, -f "edgefer train")
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import httpx
import numpy as np
import torch

from edgefer.bench.profiling import parse_pids, paused
from edgefer.loading import load_model
from edgefer.serving.process import ServerProcess
from edgefer.wire import Message, TensorData, compress, decode_message, encode_feature, encode_message


def serve(checkpoint: str, engine: str, replicas: int, runtime: str, threads: int) -> ServerProcess:
    return ServerProcess(["--checkpoint", checkpoint, "--no-large", "--threads", str(threads), "--runtime", runtime,
                          "--full-runtime", "auto", "--engine", engine, "--replicas", str(replicas)])  # fmt: skip


def bodies(checkpoint: str) -> dict[str, tuple[bytes, dict[str, str]]]:
    """One request body (and headers) per model, as the edge runtime would send it."""
    model = load_model(checkpoint, "torch")
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    size = model.preprocess.size
    with torch.inference_mode():
        feature = model.split("stage2")[0](torch.randn(1, 3, size, size)).numpy()
    out = {}
    for name, tensor, params in (
        ("full", TensorData("image", face), {}),
        ("split-stage2", encode_feature("feature", feature, "int8"), {"codec": "int8"}),
    ):
        body, headers = encode_message(
            Message([tensor], parameters={"binary_data_output": True, **params}), kind="inputs"
        )
        if name == "split-stage2":
            body, headers["Content-Encoding"] = compress(body, "zstd"), "zstd"
        out[name] = (body, headers)
    return out


def load(url: str, model: str, body: bytes, headers: dict, clients: int, requests: int) -> dict:
    latencies: list[float] = []
    compute: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                r = http.post(f"/v2/models/{model}/infer", content=body, headers=headers)
                elapsed = time.perf_counter() - start
                r.raise_for_status()
                message = decode_message(r.content, r.headers.get("inference-header-content-length"), kind="outputs")
                with lock:
                    latencies.append(elapsed * 1000)
                    compute.append(float(message.parameters["compute_ms"]))

    began = time.perf_counter()
    workers = [threading.Thread(target=client) for _ in range(clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.perf_counter() - began
    p = np.percentile(latencies, [50, 90, 99])
    return {
        "model": model, "clients": clients, "requests": len(latencies), "req_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(p[0], 2), "p90_ms": round(p[1], 2), "p99_ms": round(p[2], 2),
        "compute_ms": round(statistics.median(compute), 2),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default="default")
    parser.add_argument("--runtimes", default="torch,onnxruntime")
    parser.add_argument("--engines", default="local", help="local, ray or both (comma-separated)")
    parser.add_argument("--replicas", default="1", help="ray: replica counts to measure (comma-separated)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2, help="the server's compute threads")
    parser.add_argument("--pause", default="", help="PIDs to stop while measuring (comma-separated)")
    parser.add_argument("--json")
    args = parser.parse_args()
    payloads = bodies(args.checkpoint)
    rows = []
    pids = parse_pids(args.pause)
    with paused(pids):
        replica_counts = [int(n) for n in args.replicas.split(",")]
        setups = [
            (engine, replicas, runtime)
            for engine in args.engines.split(",")
            for replicas in (replica_counts if engine == "ray" else [1])
            for runtime in args.runtimes.split(",")
        ]
        for engine, replicas, runtime in setups:
            name = f"{engine}x{replicas}/{runtime}"
            with serve(args.checkpoint, engine, replicas, runtime, args.threads) as server:
                for model, (body, headers) in payloads.items():
                    load(server.url, model, body, headers, 4, 50)  # warm-up
                    for clients in map(int, args.clients.split(",")):
                        row = load(server.url, model, body, headers, clients, args.requests)
                        rows.append({"engine": engine, "replicas": replicas, "runtime": runtime, **row})
                        print(f"{name:<22}{model:<14}{clients:>3} clients {row['req_per_s']:8.1f} req/s"
                              f"  p50 {row['p50_ms']:7.2f}  p90 {row['p90_ms']:7.2f}  p99 {row['p99_ms']:7.2f} ms"
                              f"  server compute {row['compute_ms']:6.2f} ms", flush=True)  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "paused": pids, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
