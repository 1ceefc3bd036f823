"""Shaped links: transfers take the time the rate implies, and nothing is left behind."""

import socket
import subprocess
import sys
import threading
import time

import pytest

from edgefer.bench.netem import LinkSpec, NetnsLink, ProxyLink, netem_available, netns_available

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


def _send(sock: socket.socket, size: int) -> float:
    start = time.perf_counter()
    sock.sendall(b"x" * size)
    assert sock.recv(1) == b"k"
    sock.close()
    return time.perf_counter() - start


def _fastest_send(link: NetnsLink, size: int, tries: int = 3) -> float:
    """The shortest of a few transfers, each on a new connection: a busy machine only ever adds time."""
    times = []
    for _ in range(tries):
        with link.edge():
            sock = socket.create_connection((link.cloud_ip, 9099), timeout=10)
        times.append(_send(sock, size))
    return min(times)


def _leftovers(tag: str) -> str:
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "link"], capture_output=True, text=True).stdout
    return "\n".join(line for line in (namespaces + links).splitlines() if tag in line)


@pytest.mark.netns
@pytest.mark.timing
@needs_netns
def test_netns_transfer_takes_the_time_the_rate_implies_and_follows_a_rate_change():
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
            # Never faster than the rate allows. A busy machine only adds time, so there is no upper bound:
            # the rate change is checked in what the kernel reports, not in a timing.
            assert _fastest_send(link, size) >= 0.95 * size / 200_000
            assert "rate 1600Kbit" in link.qdiscs()  # 200 KB/s
            link.shape(LinkSpec(rate_kbps=500, rtt_ms=0))
            assert "rate 4Mbit" in link.qdiscs() and "rate 1600Kbit" not in link.qdiscs()
            assert _fastest_send(link, size) >= 0.95 * size / 500_000
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


@pytest.mark.timing
def test_proxy_link_shapes_rate_and_adds_delay():
    size, tries = 60_000, 3
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

    def fastest(link: ProxyLink) -> float:  # a busy machine only ever adds time
        return min(_send(socket.create_connection((link.proxy_host, link.proxy_port)), size) for _ in range(tries))

    threading.Thread(target=serve, daemon=True).start()
    with ProxyLink(LinkSpec(rate_kbps=200, rtt_ms=0), target=("127.0.0.1", port)) as link:
        # never faster than the rate (less the bucket's 3 KB burst); a busy machine only adds time
        assert fastest(link) >= 0.9 * size / 200_000
        assert link.spec.rate_kbps == 200
        link.shape(LinkSpec(rate_kbps=10_000, rtt_ms=200))  # fast, but 100 ms each way
        assert link.spec == LinkSpec(rate_kbps=10_000, rtt_ms=200)
        assert fastest(link) >= 0.2
    listener.close()


def test_link_spec_validates():
    with pytest.raises(ValueError, match="positive rate"):
        LinkSpec(rate_kbps=0)
