"""``strategy="auto"`` in the runtime: it picks a plan per request, and every answer matches the edge's."""

import numpy as np
import pytest

from conftest import FACES
from edgefer.bench.netem import LinkSpec, ProxyLink
from edgefer.edge import EdgeRunner
from edgefer.edge.planner import Planner


def link_url(link: ProxyLink) -> str:
    return f"http://{link.proxy_host}:{link.proxy_port}"


@pytest.mark.slow
def test_auto_without_a_cloud_runs_locally_and_answers_every_request(tiny):
    runner = EdgeRunner(tiny, strategy="auto", cloud_url="http://127.0.0.1:9", timeout=0.5)  # nothing listens
    plans = [runner.predict(face).breakdown.plan for face in FACES[:5]]
    assert set(plans) == {"edge"}


@pytest.mark.slow
@pytest.mark.timing
def test_auto_offloads_a_very_slow_device_and_stays_local_on_a_fast_one(tiny, cloud):
    with EdgeRunner(tiny, strategy="auto", cloud_url=cloud.url, slowdown=40) as slow:
        plans = [slow.predict(face).breakdown.plan for face in FACES[:8]]
    assert all(p != "edge" for p in plans[2:]), plans
    # A fast device on a really slow link (5 KB/s through the shaping proxy): the probes confirm it
    with (
        ProxyLink(LinkSpec(rate_kbps=5, rtt_ms=0), target=(cloud.host, cloud.port)) as link,
        EdgeRunner(
            tiny, strategy="auto", cloud_url=f"http://{link.proxy_host}:{link.proxy_port}", probe_every=5
        ) as fast,
    ):
        fast.planner = Planner(fast.profile(FACES[0]))
        fast.link.observe_rtt(1.0)
        fast.link.observe(8000, 200, 1 + 8000 / 5)  # what 5 KB/s looks like
        plans = [fast.predict(face).breakdown.plan for face in FACES[:10]]
    assert plans.count("edge") >= 8  # local, but for the occasional probe
    assert any(p != "edge" for p in plans)


def test_auto_answers_match_the_edge(tiny, cloud):
    edge = EdgeRunner(tiny)
    with EdgeRunner(tiny, strategy="auto", cloud_url=cloud.url, codec="fp32", slowdown=40) as auto:
        for face in FACES[:5]:
            got = auto.predict(face)
            assert np.allclose(got.logits, edge.predict(face).logits, atol=1e-4), got.breakdown.plan
