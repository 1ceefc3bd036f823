"""How long transfers really take on the shaped links the offload bench uses: the kernel's (netns +
tbf) and the userspace proxy (rate and delay), against what their specs imply.

For each link and spec, ``--size`` bytes go to a sink that acknowledges them, ``--tries`` times on new
connections; the table gives the fastest and the median time and their ratio to the spec's time
(bytes / rate + RTT). A loaded machine only adds time, so the fastest try is the link's own figure.
The tests check the configuration and the proxy's pacing on an injected clock; this is where the
wall clock is looked at.

    .venv/bin/python benchmarks/shaped_links.py --json docs/shaped_links.json
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time

from edgefer.bench.netem import LinkSpec, NetnsLink, ProxyLink, netns_available
from edgefer.serving.process import free_port

SPECS = [LinkSpec(rate_kbps=200, rtt_ms=0), LinkSpec(rate_kbps=500, rtt_ms=0), LinkSpec(rate_kbps=10_000, rtt_ms=200)]
PORT = 9099
SINK = """
import socket, sys
size = int(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(8)
while True:
    c, _ = s.accept(); n = 0
    while n < size:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.sendall(b"k"); c.close()
"""


def transfer(connect, size: int) -> float:
    sock = connect()
    start = time.perf_counter()
    sock.sendall(b"x" * size)
    if sock.recv(1) != b"k":
        raise RuntimeError("the sink did not acknowledge")
    seconds = time.perf_counter() - start
    sock.close()
    return seconds


def wait_listening(connect, attempts: int = 50) -> None:
    """Wait until the sink accepts connections (it starts in a process of its own)."""
    for _ in range(attempts):
        try:
            connect().close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the sink did not start listening")


def row(kind: str, spec: LinkSpec, size: int, times: list[float]) -> dict:
    expected = size / (spec.rate_kbps * 1000) + spec.rtt_ms / 1000
    fastest, median = min(times), statistics.median(times)
    return {"link": kind, "rate_kbps": spec.rate_kbps, "rtt_ms": spec.rtt_ms, "expected_s": round(expected, 4),
            "fastest_s": round(fastest, 4), "median_s": round(median, 4),
            "fastest_ratio": round(fastest / expected, 3), "median_ratio": round(median / expected, 3)}  # fmt: skip


def netns_rows(size: int, tries: int) -> list[dict]:
    rows = []
    for spec in SPECS:
        if spec.rtt_ms:
            continue  # the kernel link adds no delay without netem
        with NetnsLink(spec) as link:
            sink = link.popen([sys.executable, "-c", SINK, link.cloud_ip, str(PORT), str(size)])
            try:

                def connect(link=link):
                    with link.edge():
                        return socket.create_connection((link.cloud_ip, PORT), timeout=30)

                wait_listening(connect)
                rows.append(row("netns", spec, size, [transfer(connect, size) for _ in range(tries)]))
            finally:
                sink.kill()
    return rows


def proxy_rows(size: int, tries: int) -> list[dict]:
    port = free_port()
    sink = subprocess.Popen([sys.executable, "-c", SINK, "127.0.0.1", str(port), str(size)])
    rows = []
    try:
        wait_listening(lambda: socket.create_connection(("127.0.0.1", port), timeout=30))
        with ProxyLink(SPECS[0], target=("127.0.0.1", port)) as link:
            for spec in SPECS:
                link.shape(spec)
                connect = lambda: socket.create_connection((link.proxy_host, link.proxy_port), timeout=30)  # noqa: E731
                rows.append(row("proxy", spec, size, [transfer(connect, size) for _ in range(tries)]))
    finally:
        sink.kill()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--tries", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    ok, why = netns_available()
    rows = (netns_rows(args.size, args.tries) if ok else []) + proxy_rows(args.size, args.tries)
    if not ok:
        print(f"netns link skipped: {why}")
    head = ("link", "KB/s", "RTT ms", "expected s", "fastest s", "median s", "fastest/exp")
    print("{:<6} {:>6} {:>6} {:>10} {:>9} {:>8} {:>11}".format(*head))
    for r in rows:
        print(f"{r['link']:<6} {r['rate_kbps']:>6} {r['rtt_ms']:>6} {r['expected_s']:>10.4f} {r['fastest_s']:>9.4f}"
              f" {r['median_s']:>8.4f} {r['fastest_ratio']:>11.3f}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"size": args.size, "tries": args.tries, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
