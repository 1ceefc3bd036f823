"""The edge-cloud benchmark (the paper's Fig. 8, on shaped links): latency per strategy, bandwidth
and device, with the cloud server in its own process behind a real shaped link.

The link is kernel-shaped (two network namespaces, veth, tbf; :class:`edgefer.netem.NetnsLink`)
when this machine allows it, else a userspace token-bucket proxy on loopback; the records say which.
The cloud is ``edgefer serve`` started in the cloud namespace (or on loopback), one thread, no
batching delay. The edge is an :class:`EdgeRunner` in this process with one thread, padded to the
device's slowdown factor. Faces are real (FER2013 PublicTest or the user's), sent one at a time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..edge import EdgeRunner
from ..loading import load_model
from ..serving.process import START_TIMEOUT, free_port, wait_ready
from .netem import LinkSpec, NetnsLink, ProxyLink, netem_available, netns_available

__all__ = ["DEVICES", "Cloud", "parse_devices", "run_degradation", "run_offload_bench"]

# The paper's phone is ~2.2-2.3x slower than its laptop (Table 4); 2.25 sits in the middle.
DEVICES = {"laptop": 1.0, "phone": 2.25}


def parse_devices(text: str) -> dict[str, float]:
    """``laptop,phone,slow=4`` -> {"laptop": 1.0, "phone": 2.25, "slow": 4.0}."""
    devices = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, factor = item.partition("=")
        if factor:
            try:
                devices[name] = float(factor)
            except ValueError:
                raise ValueError(f"device {name!r}: factor {factor!r} is not a number") from None
            if devices[name] < 1:
                raise ValueError(f"device {name!r}: the slowdown factor must be >= 1 (this machine is 1)")
        elif name in DEVICES:
            devices[name] = DEVICES[name]
        else:
            raise ValueError(f"unknown device {name!r}; use {', '.join(DEVICES)} or NAME=FACTOR")
    return devices


@dataclass
class Cloud:
    """A shaped link with the cloud server behind it; ``with cloud.edge():`` runs edge code."""

    link: NetnsLink | ProxyLink
    url: str
    token: str
    process: subprocess.Popen

    @property
    def kind(self) -> str:
        return "kernel (netns + tbf)" if isinstance(self.link, NetnsLink) else "userspace proxy"

    def edge(self) -> contextlib.AbstractContextManager:
        return self.link.edge() if isinstance(self.link, NetnsLink) else contextlib.nullcontext()

    def shape(self, spec: LinkSpec) -> None:
        self.link.shape(spec)


@contextlib.contextmanager
def start_cloud(
    spec: LinkSpec, checkpoint: str = "default", threads: int = 1, force_proxy: bool = False
) -> Iterator[Cloud]:
    """Set up the link and the server; tear both down on exit, on error and Ctrl-C too."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        token_file.write_text(token)
        use_netns = not force_proxy and netns_available()[0] and (spec.rtt_ms == 0 or netem_available())
        with contextlib.ExitStack() as stack:
            serve = [sys.executable, "-m", "edgefer.cli.main", "serve", "--token-file", str(token_file),
                     "--checkpoint", checkpoint, "--threads", str(threads), "--max-delay-ms", "0",
                     "--no-large"]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
            log = stack.enter_context((Path(tmp) / "serve.log").open("w+"))
            if use_netns:
                link = stack.enter_context(NetnsLink(spec))
                host, port = link.cloud_ip, 8000
                process = link.popen([*serve, "--host", host, "--port", str(port)], env=env, stderr=log)
            else:
                host, port = "127.0.0.1", free_port()
                process = subprocess.Popen([*serve, "--port", str(port)], env=env, stderr=log)
                link = stack.enter_context(ProxyLink(spec, target=(host, port)))
                host, port = link.proxy_host, link.proxy_port
            stack.callback(_stop, process)
            cloud = Cloud(link, f"http://{host}:{port}", token, process)
            try:
                with cloud.edge():
                    wait_ready(cloud.url, process, timeout=START_TIMEOUT)
            except RuntimeError as exc:
                log.seek(0)
                raise RuntimeError(f"{exc}; its log:\n{log.read()[-2000:]}") from None
            yield cloud


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def _summarise(device: str, kbps: float, strategy: str, breakdowns: list, link_kind: str) -> dict:
    totals = [b.total_ms for b in breakdowns]
    return {
        "device": device,
        "bandwidth_kbps": kbps,
        "strategy": strategy,
        "median_ms": round(statistics.median(totals), 2),
        "p90_ms": round(float(np.percentile(totals, 90)), 2),
        "bytes_up": round(statistics.median(b.bytes_up for b in breakdowns)),
        "bytes_down": round(statistics.median(b.bytes_down for b in breakdowns)),
        "plans": dict(Counter(b.plan for b in breakdowns)),
        "fallbacks": sum(b.fallback for b in breakdowns),
        "plan_ms": round(statistics.median(b.plan_ms for b in breakdowns), 3),
        "link": link_kind,
    }


def run_offload_bench(
    faces: np.ndarray,
    bandwidths: list[float],
    devices: dict[str, float],
    strategies: list[str],
    *,
    rtt_ms: float = 0.0,
    requests: int = 20,
    warmup: int = 3,
    checkpoint: str = "default",
    force_proxy: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[dict]:
    """One record per device x bandwidth x strategy (see the module docstring)."""
    import torch

    torch.set_num_threads(1)
    records = []
    model = load_model(checkpoint)
    with start_cloud(LinkSpec(bandwidths[0], rtt_ms), checkpoint, force_proxy=force_proxy) as cloud, cloud.edge():
        for device, factor in devices.items():
            runners = {
                s: EdgeRunner(
                    model,
                    strategy=s,
                    cloud_url=cloud.url if s != "edge" else None,
                    token=cloud.token,
                    slowdown=factor,
                )
                for s in strategies
            }
            try:
                for kbps in bandwidths:
                    cloud.shape(LinkSpec(kbps, rtt_ms))
                    for face in faces[:warmup]:
                        for runner in runners.values():
                            runner.predict(face)
                    # Interleaved: each face goes through every strategy in turn, starting with a
                    # different one each time, so the machine's noise (and whatever the previous
                    # request left in the caches) falls on all of them alike.
                    got: dict[str, list] = {s: [] for s in runners}
                    order = list(runners)
                    for i, face in enumerate(faces[warmup : warmup + requests]):
                        for strategy in order[i % len(order) :] + order[: i % len(order)]:
                            got[strategy].append(runners[strategy].predict(face).breakdown)
                    for strategy in runners:
                        records.append(_summarise(device, kbps, strategy, got[strategy], cloud.kind))
                        if progress:
                            r = records[-1]
                            progress(f"{device:<7} {kbps:6.0f} KB/s {strategy:<6} median {r['median_ms']:7.1f} ms"
                                     f"  p90 {r['p90_ms']:7.1f}  up {r['bytes_up']:6d} B  down {r['bytes_down']:6d} B"
                                     f"  {r['plans']}")  # fmt: skip
            finally:
                for runner in runners.values():
                    runner.close()
    return records


def run_degradation(
    faces: np.ndarray,
    before_kbps: float,
    after_kbps: float,
    factor: float,
    *,
    rtt_ms: float = 0.0,
    requests: int = 60,
    change_at: int = 30,
    checkpoint: str = "default",
    force_proxy: bool = False,
) -> list[dict]:
    """``auto`` on one device while the link drops from ``before`` to ``after`` at request ``change_at``:
    one record per request (index, rate, plan, latency)."""
    import torch

    torch.set_num_threads(1)
    trace = []
    with start_cloud(LinkSpec(before_kbps, rtt_ms), checkpoint, force_proxy=force_proxy) as cloud, cloud.edge():
        runner = EdgeRunner(
            load_model(checkpoint), strategy="auto", cloud_url=cloud.url, token=cloud.token, slowdown=factor
        )
        try:
            for i in range(requests):
                if i == change_at:
                    cloud.shape(LinkSpec(after_kbps, rtt_ms))
                kbps = before_kbps if i < change_at else after_kbps
                b = runner.predict(faces[i % len(faces)]).breakdown
                trace.append({"request": i, "bandwidth_kbps": kbps, "plan": b.plan, "total_ms": round(b.total_ms, 2)})
        finally:
            runner.close()
    return trace
