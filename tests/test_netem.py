"""Shaped links: the kernel gets the rate asked for, the proxy's bucket paces bytes at its rate (on an
injected clock), data passes both, and nothing is left behind. How long transfers really take on
them is measured by ``benchmarks/shaped_links.py``, not here: a loaded machine only adds time."""

import asyncio
import socket
import subprocess
import sys
import threading
import time

import pytest

from edgefer.bench.netem import LinkSpec, NetnsLink, ProxyLink, _Bucket, burst_bytes, netem_available, netns_available

NETNS_OK, WHY_NOT = netns_available()
needs_netns = pytest.mark.skipif(not NETNS_OK, reason=f"no network namespaces here: {WHY_NOT}")


def _sink_server(host: str, port: int, size: int) -> str:
    return f"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(({host!r}, {port})); s.listen(4)
while True:
    c, _ = s.accept(); n = 0
    while n < {size}:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.sendall(b"k"); c.close()
"""


def _send(sock: socket.socket, size: int) -> None:
    """``size`` bytes through the link; the far end acknowledges having all of them."""
    sock.sendall(b"x" * size)
    assert sock.recv(1) == b"k"
    sock.close()


def _send_through(link: NetnsLink, size: int) -> None:
    with link.edge():
        sock = socket.create_connection((link.cloud_ip, 9099), timeout=10)
    _send(sock, size)


def _leftovers(tag: str) -> str:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    return "\n".join(line for line in (namespaces + links).splitlines() if tag in line)


@pytest.mark.netns
@needs_netns
def test_netns_link_carries_data_at_the_rate_the_kernel_reports_and_follows_a_rate_change():
    size, tag = 100_000, f"t{time.monotonic_ns() % 100000}"
    with NetnsLink(LinkSpec(rate_kbps=200, rtt_ms=0), tag=tag) as link:
        assert "tbf" in link.qdiscs()
        server = link.popen([sys.executable, "-c", _sink_server(link.cloud_ip, 9099, size)])
        try:
            for _ in range(50):  # wait for the listener inside the namespace
                try:
                    with link.edge():
                        socket.create_connection((link.cloud_ip, 9099), timeout=10).close()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                pytest.fail("the server in the cloud namespace did not start")
            assert "rate 1600Kbit" in link.qdiscs()  # 200 KB/s
            _send_through(link, size)
            link.shape(LinkSpec(rate_kbps=500, rtt_ms=0))
            assert "rate 4Mbit" in link.qdiscs() and "rate 1600Kbit" not in link.qdiscs()
            _send_through(link, size)
        finally:
            server.kill()
    assert _leftovers(tag) == ""


@pytest.mark.netns
@needs_netns
def test_netns_teardown_runs_on_errors_and_leaves_no_namespace_or_qdisc():
    tag = f"e{time.monotonic_ns() % 100000}"
    with pytest.raises(KeyError), NetnsLink(LinkSpec(rate_kbps=300, rtt_ms=0), tag=tag):
        assert tag in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        raise KeyError("boom")
    assert _leftovers(tag) == ""


@pytest.mark.netns
@needs_netns
@pytest.mark.skipif(netem_available(), reason="this kernel has netem, so delay works in namespaces")
def test_netns_refuses_delay_without_netem():
    with pytest.raises(RuntimeError, match="no netem qdisc"):
        NetnsLink(LinkSpec(rate_kbps=300, rtt_ms=20))


def _paced(bucket: _Bucket, now: list[float], sizes: list[int]) -> float:
    """Fake seconds the bucket takes to let ``sizes`` through, on the injected clock."""
    start = now[0]

    async def take_all() -> None:
        for n in sizes:
            await bucket.take(n)

    asyncio.run(take_all())
    return now[0] - start


def test_the_proxy_bucket_paces_bytes_at_its_rate_bursts_after_a_pause_and_follows_a_rate_change():
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    rate, chunk = 2**17, 1024  # 128 KiB/s and 1 KiB reads: every time below is exact in binary
    bucket = _Bucket(rate, clock=lambda: now[0], sleep=sleep)
    chunks = [chunk] * 100
    assert _paced(bucket, now, chunks) == 100 * chunk / rate
    now[0] += 10.0  # idle: the bucket fills, but only to its depth
    assert _paced(bucket, now, [chunk, chunk]) == 0.0  # within the burst: at once
    left = burst_bytes(rate) - 2 * chunk
    assert _paced(bucket, now, chunks) == pytest.approx((100 * chunk - left) / rate)
    bucket.rate = 4 * rate  # what ProxyLink.shape does
    assert _paced(bucket, now, chunks) == pytest.approx(100 * chunk / (4 * rate))


def test_proxy_link_carries_data_both_ways_and_takes_a_new_shape():
    size, tries = 60_000, 2
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        for _ in range(2 * tries):
            conn, _ = listener.accept()
            received = 0
            while received < size:
                data = conn.recv(65536)
                if not data:
                    break
                received += len(data)
            conn.sendall(b"k")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    with ProxyLink(LinkSpec(rate_kbps=2000, rtt_ms=0), target=("127.0.0.1", port)) as link:
        for _ in range(tries):
            _send(socket.create_connection((link.proxy_host, link.proxy_port), timeout=30), size)
        link.shape(LinkSpec(rate_kbps=10_000, rtt_ms=20))
        assert link.spec == LinkSpec(rate_kbps=10_000, rtt_ms=20)
        assert all(bucket.rate == 10_000_000 for bucket in link._buckets)
        for _ in range(tries):
            _send(socket.create_connection((link.proxy_host, link.proxy_port), timeout=30), size)
    listener.close()


def test_link_spec_validates():
    with pytest.raises(ValueError, match="positive rate"):
        LinkSpec(rate_kbps=0)
