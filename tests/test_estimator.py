"""The link estimator: rates and round trip from the runner's own requests, on fake and shaped links."""

import time

import pytest

from conftest import FACES
from edgefer.bench.netem import LinkSpec, ProxyLink, burst_bytes, netns_available
from edgefer.edge import EdgeRunner
from edgefer.edge.estimator import LinkEstimator
from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

NETNS_OK, WHY_NOT = netns_available()


def test_estimator_fits_rate_and_rtt_and_attributes_directions():
    est = LinkEstimator(alpha=0.5)
    est.observe_rtt(10.0)
    for _ in range(8):
        est.observe(bytes_up=20_000, bytes_down=200, network_ms=10 + 20_000 / 400)  # 400 KB/s up
        est.observe(bytes_up=200, bytes_down=30_000, network_ms=10 + 30_000 / 900)  # 900 KB/s down
    e = est.estimate()
    assert e.rtt_ms == pytest.approx(10) and e.up_kbps == pytest.approx(400, rel=0.01)
    assert e.down_kbps == pytest.approx(900, rel=0.01)
    assert e.transfer_ms(4000, 9000) == pytest.approx(10 + 10 + 10, rel=0.01)
    with pytest.raises(RuntimeError, match="no estimate yet"):
        LinkEstimator().estimate()


def test_estimator_follows_a_rate_change_within_a_few_requests():
    est = LinkEstimator(alpha=0.5, rtt_ms=5)
    for _ in range(10):
        est.observe(8000, 8000, 5 + 16_000 / 1000)
    for _ in range(4):
        est.observe(8000, 8000, 5 + 16_000 / 200)
    assert est.estimate().up_kbps == pytest.approx(200, rel=0.3)


@pytest.mark.timing
@pytest.mark.parametrize("kind", ["proxy", pytest.param("netns", marks=pytest.mark.netns)])
def test_estimator_converges_on_a_shaped_link(tiny, kind):
    if kind == "netns" and not NETNS_OK:
        pytest.skip(f"no network namespaces here: {WHY_NOT}")
    # fp32 maps (~30 KB each way) so that the links' 3 KB token-bucket burst (burst_bytes) matters little (~10%)
    if kind == "proxy":
        plane = DataPlane(served_models(tiny), max_delay_ms=0)
        with (
            BackgroundServer(create_app(plane)) as srv,
            ProxyLink(LinkSpec(300, rtt_ms=0), target=(srv.host, srv.port)) as link,
        ):
            url = f"http://{link.proxy_host}:{link.proxy_port}"
            _run_and_check(EdgeRunner(tiny, strategy="split", cloud_url=url, codec="fp32"), 300)
    else:
        with (
            NetnsCloud(tiny) as (link, url),
            link.edge(),
        ):  # the server in the cloud namespace, the runner in the edge's
            _run_and_check(EdgeRunner(tiny, strategy="split", cloud_url=url, codec="fp32"), 300)


def _run_and_check(runner, kbps):
    runner.probe_rtt()
    got = [runner.predict(face).breakdown for face in FACES[:12]]
    assert not any(b.fallback for b in got)
    estimate = runner.link.estimate()
    runner.close()
    last = got[-1]

    def effective(size: int) -> float:  # what the link delivers: a full bucket at once, then the rate
        return kbps * size / (size - burst_bytes(kbps * 1000))

    # It found the link, not loopback's speed: never above what the link delivers (a busy machine only
    # makes transfers slower, so there is no lower bound but a sign of life).
    assert 0 < estimate.up_kbps <= 1.25 * effective(last.bytes_up)
    assert 0 < estimate.down_kbps <= 1.25 * effective(last.bytes_down)


class NetnsCloud:
    """A BackgroundServer whose socket lives in the cloud namespace of a NetnsLink."""

    def __init__(self, model):
        from edgefer.bench.netem import NetnsLink

        self.link = NetnsLink(LinkSpec(300, rtt_ms=0), tag=f"o{time.monotonic_ns() % 100000}")
        self.model = model

    def __enter__(self):
        self.link.__enter__()
        with self.link.cloud():
            self.server = BackgroundServer(
                create_app(DataPlane(served_models(self.model), max_delay_ms=0)), host=self.link.cloud_ip
            )
        self.server.start()
        return self.link, self.server.url

    def __exit__(self, *exc):
        self.server.stop()
        self.link.__exit__(*exc)
