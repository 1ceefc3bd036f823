"""Shaped network links between an edge and a cloud, for measuring offloading under real conditions.

Primary (root, iproute2): two network namespaces, ``edgefer-edge-<tag>`` and
``edgefer-cloud-<tag>``, joined by a veth pair with a private /30 (edge ``.1``, cloud ``.2``).
Each end's egress gets a ``tbf`` (the rate), under a ``netem`` (half the round-trip delay) where the
kernel has one, so uplink and downlink are shaped separately. Some kernels lack ``sch_netem`` (this
project's machine has only tbf, htb and pfifo): there a link with a non-zero RTT is refused, and
:func:`shaped_link` uses the proxy, which can delay. Nothing touches the host's interfaces or addresses.
:meth:`NetnsLink.edge` runs code of this process inside the edge namespace; :meth:`NetnsLink.popen`
starts a program inside the cloud namespace. Tear-down always runs, on error and Ctrl-C too, and
stale namespaces left by a killed run with the same tag are removed at set-up.

Fallback (no root or no namespaces): :class:`ProxyLink`, a userspace TCP proxy on loopback whose
token buckets shape both directions and which delays data by half the RTT each way.

Rates are in kilobytes per second (KB/s, 1 KB = 1000 bytes), as the paper's 200 KB/s - 1 MB/s.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["LinkSpec", "NetnsLink", "ProxyLink", "burst_bytes", "netem_available", "netns_available", "shaped_link"]

CLONE_NEWNET = 0x40000000


def burst_bytes(rate_bytes: float) -> int:
    """The token bucket's depth, for the kernel's shaper and the proxy alike: 5 ms worth of the
    rate, at least two MTUs. A transfer starting on a full bucket gets this much through at once."""
    return max(int(rate_bytes * 0.005), 3000)


@dataclass(frozen=True)
class LinkSpec:
    rate_kbps: float  # KB/s each way
    rtt_ms: float = 20.0

    def __post_init__(self) -> None:
        if self.rate_kbps <= 0 or self.rtt_ms < 0:
            raise ValueError(f"need a positive rate and a non-negative RTT, got {self}")


def _run(*args: str) -> None:
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


def netns_available() -> tuple[bool, str]:
    """Whether namespaces and tc can be used here, and why not."""
    if os.geteuid() != 0:
        return False, "network namespaces need root"
    if not shutil.which("ip") or not shutil.which("tc"):
        return False, "iproute2 (ip, tc) is not installed"
    probe = f"edgefer-probe-{os.getpid()}"
    try:
        _run("ip", "netns", "add", probe)
    except RuntimeError as exc:
        return False, str(exc)
    _run("ip", "netns", "del", probe)
    return True, ""


def netem_available() -> bool:
    """Whether the kernel has the netem qdisc (for delay); checked on a throw-away veth pair."""
    probe = f"edgefer-qprobe-{os.getpid()}"
    try:
        _run("ip", "netns", "add", probe)
    except RuntimeError:
        return False
    try:
        _run("ip", "-n", probe, "link", "add", "qa", "type", "veth", "peer", "name", "qb")
        result = subprocess.run(["tc", "-n", probe, "qdisc", "add", "dev", "qa", "root", "netem", "delay", "1ms"],
                                capture_output=True, check=False)  # fmt: skip
        return result.returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    with open(path) as f:
        if libc.setns(f.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({path}) failed")


class NetnsLink:
    """Two namespaces and a shaped veth pair; use as a context manager."""

    kind = "netns"

    def __init__(self, spec: LinkSpec, *, tag: str | None = None) -> None:
        self.netem = netem_available()
        if spec.rtt_ms > 0 and not self.netem:
            raise RuntimeError(
                "this kernel has no netem qdisc, so namespaces can shape the rate but not add delay: "
                "use rtt_ms=0 here, or the userspace ProxyLink"
            )
        self.spec = spec
        self.tag = tag or str(os.getpid())
        self.edge_ns, self.cloud_ns = f"edgefer-edge-{self.tag}", f"edgefer-cloud-{self.tag}"
        self.edge_if, self.cloud_if = f"efe{self.tag}"[:15], f"efc{self.tag}"[:15]
        octet = zlib.crc32(self.tag.encode()) % 250 + 1  # a /30 per tag in 10.211.0.0/16
        self.edge_ip, self.cloud_ip = f"10.211.{octet}.1", f"10.211.{octet}.2"
        self._up = False

    # set-up and tear-down ---------------------------------------------------------------------

    def __enter__(self) -> NetnsLink:
        self.teardown()  # leftovers of a killed run with this tag
        try:
            self._setup()
        except BaseException:
            self.teardown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()

    def _setup(self) -> None:
        _run("ip", "netns", "add", self.edge_ns)
        _run("ip", "netns", "add", self.cloud_ns)
        self._up = True
        _run("ip", "link", "add", self.edge_if, "netns", self.edge_ns, "type", "veth", "peer", "name", self.cloud_if,
             "netns", self.cloud_ns)  # fmt: skip
        for ns, dev, ip in ((self.edge_ns, self.edge_if, self.edge_ip), (self.cloud_ns, self.cloud_if, self.cloud_ip)):
            _run("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        self.shape(self.spec, first=True)

    def shape(self, spec: LinkSpec, *, first: bool = False) -> None:
        """Set (or change, mid-run) the rate and RTT of both directions."""
        if spec.rtt_ms > 0 and not self.netem:
            raise RuntimeError("this kernel has no netem qdisc: a namespace link cannot add delay")
        verb = "add" if first else "change"
        rate = f"{spec.rate_kbps * 8:.0f}kbit"
        tbf = ["tbf", "rate", rate, "burst", str(burst_bytes(spec.rate_kbps * 1000)), "latency", "1s"]
        for ns, dev in ((self.edge_ns, self.edge_if), (self.cloud_ns, self.cloud_if)):
            if self.netem:
                delay = f"{spec.rtt_ms / 2:.3f}ms"
                _run("tc", "-n", ns, "qdisc", verb, "dev", dev, "root", "handle", "1:", "netem", "delay", delay)
                _run("tc", "-n", ns, "qdisc", verb, "dev", dev, "parent", "1:1", "handle", "10:", *tbf)
            else:
                _run("tc", "-n", ns, "qdisc", verb, "dev", dev, "root", "handle", "1:", *tbf)
        self.spec = spec

    def teardown(self) -> None:
        for ns in (self.edge_ns, self.cloud_ns):  # deleting a namespace deletes its veth end and qdiscs
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._up = False

    # using it ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _inside(self, namespace: str) -> Iterator[None]:
        """This thread's new sockets are created inside ``namespace`` for the duration."""
        own = os.open(f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            _setns(f"/var/run/netns/{namespace}")
            yield
        finally:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(own, CLONE_NEWNET)
            os.close(own)

    def edge(self) -> contextlib.AbstractContextManager[None]:
        """Run this thread's new sockets inside the edge namespace for the duration."""
        return self._inside(self.edge_ns)

    def cloud(self) -> contextlib.AbstractContextManager[None]:
        """Create sockets inside the cloud namespace for the duration (e.g. a server's listener)."""
        return self._inside(self.cloud_ns)

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        """Start a program inside the cloud namespace."""
        return subprocess.Popen(["ip", "netns", "exec", self.cloud_ns, *args], **kwargs)

    @property
    def cloud_host(self) -> str:
        return self.cloud_ip

    def qdiscs(self) -> str:
        out = []
        for ns in (self.edge_ns, self.cloud_ns):
            result = subprocess.run(["tc", "-n", ns, "qdisc", "show"], capture_output=True, text=True, check=False)
            out.append(result.stdout)
        return "".join(out)


class _Bucket:
    """A token bucket at ``rate`` bytes/s holding at most :func:`burst_bytes`; ``clock`` and ``sleep``
    are injectable, so that the pacing can be checked without a wall clock."""

    def __init__(self, rate_bytes: float, *, clock=time.monotonic, sleep=asyncio.sleep) -> None:
        self.rate, self.tokens, self.clock, self.sleep = rate_bytes, 0.0, clock, sleep
        self.at = clock()

    async def take(self, n: int) -> None:
        while True:
            now = self.clock()
            self.tokens = min(self.tokens + (now - self.at) * self.rate, burst_bytes(self.rate))
            self.at = now
            if self.tokens >= n:
                self.tokens -= n
                return
            await self.sleep((n - self.tokens) / self.rate)


class ProxyLink:
    """A shaping TCP proxy on loopback in front of ``target``; use as a context manager.

    The edge connects to ``(proxy_host, proxy_port)``; bytes each way pass a token bucket at the
    link's rate and arrive half the RTT later.
    """

    kind = "proxy"

    def __init__(self, spec: LinkSpec, *, target: tuple[str, int]) -> None:
        self.spec, self.target = spec, target
        self.proxy_host, self.proxy_port = "127.0.0.1", 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._buckets: tuple[_Bucket, _Bucket] | None = None

    def shape(self, spec: LinkSpec) -> None:
        self.spec = spec
        if self._buckets is not None:
            for bucket in self._buckets:
                bucket.rate = spec.rate_kbps * 1000

    async def _pipe(self, reader, writer, bucket: _Bucket) -> None:
        """Pace bytes through the bucket, then deliver each chunk half an RTT after it left: a
        propagation delay, so data in flight is delayed concurrently, not chunk after chunk."""
        loop = asyncio.get_running_loop()
        in_flight: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await in_flight.get()) is not None:
                due, data = item
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        delivery = asyncio.create_task(deliver())
        try:
            while data := await reader.read(1400):
                await bucket.take(len(data))
                in_flight.put_nowait((loop.time() + self.spec.rtt_ms / 2000, data))
            in_flight.put_nowait(None)
            await delivery
        except (ConnectionError, asyncio.CancelledError):
            delivery.cancel()
        finally:
            writer.close()

    async def _handle(self, edge_reader, edge_writer) -> None:
        sock = edge_writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            cloud_reader, cloud_writer = await asyncio.open_connection(*self.target)
        except OSError:
            edge_writer.close()
            return
        cloud_writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up, down = self._buckets
        # when the proxy stops, return normally: Python 3.11's stream callback calls task.exception()
        # on a cancelled handler, which raises and gets logged as an error
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(self._pipe(edge_reader, cloud_writer, up), self._pipe(cloud_reader, edge_writer, down))

    def __enter__(self) -> ProxyLink:
        ready = threading.Event()

        async def main() -> None:
            self._buckets = (_Bucket(self.spec.rate_kbps * 1000), _Bucket(self.spec.rate_kbps * 1000))
            self._server = await asyncio.start_server(self._handle, self.proxy_host, 0)
            self.proxy_port = self._server.sockets[0].getsockname()[1]
            ready.set()
            async with self._server:
                await self._server.serve_forever()

        def run() -> None:
            try:
                self._loop.run_until_complete(main())
            except asyncio.CancelledError:  # __exit__ cancels serve_forever: a normal stop
                pass
            finally:  # let the cancelled connection handlers finish before the loop closes
                if pending := asyncio.all_tasks(self._loop):
                    self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self._loop.close()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the shaping proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._server is not None:
            loop, server = self._loop, self._server

            def stop() -> None:  # on the loop's own thread: all_tasks is not safe from another one
                server.close()
                for task in asyncio.all_tasks(loop):
                    task.cancel()

            # one hand-off: the loop closes once serve_forever ends, so later hand-offs would fail
            with contextlib.suppress(RuntimeError):  # the loop has already stopped and closed
                loop.call_soon_threadsafe(stop)
            self._thread.join(timeout=5)


def shaped_link(spec: LinkSpec, target: tuple[str, int] | None = None) -> NetnsLink | ProxyLink:
    """Namespaces and tc when this machine allows them (and has netem, if the RTT is not zero), else
    the loopback proxy (needs ``target``)."""
    ok, _ = netns_available()
    if ok and (spec.rtt_ms == 0 or netem_available()):
        return NetnsLink(spec)
    if target is None:
        raise ValueError("the userspace proxy needs the cloud server's (host, port) as target")
    return ProxyLink(spec, target=target)
