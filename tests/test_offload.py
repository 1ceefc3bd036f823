"""Beyond the paper: the link estimator, the planner, `strategy="auto"` and the offload bench."""

import json
import subprocess
import time

import numpy as np
import pytest
import torch
from matplotlib import cbook
from typer.testing import CliRunner

from edgefer.cli.main import app
from edgefer.data import Preprocess
from edgefer.edge import EdgeRunner
from edgefer.edge.estimator import LinkEstimate, LinkEstimator
from edgefer.edge.planner import Plan, Planner, Profile
from edgefer.models import build
from edgefer.netem import LinkSpec, ProxyLink, burst_bytes, netns_available
from edgefer.offload import parse_devices, start_cloud
from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

PRE = Preprocess(size=64, mean=0.5, std=0.25)
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FACES = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)
NETNS_OK, WHY_NOT = netns_available()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    net = build("shufflenet_asp_sfp", wavelet="haar").eval()
    return net, {"classes": CLASSES, "preprocess": vars(PRE)}


@pytest.fixture(scope="module")
def server(model):
    with BackgroundServer(create_app(DataPlane(served_models(model[0], PRE), max_delay_ms=0))) as srv:
        yield srv


# -- the estimator -------------------------------------------------------------------------------


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


@pytest.mark.parametrize("kind", ["proxy", "netns"])
def test_estimator_converges_on_a_shaped_link(model, kind):
    if kind == "netns" and not NETNS_OK:
        pytest.skip(f"no network namespaces here: {WHY_NOT}")
    # fp32 maps (~30 KB each way) so that the links' 3 KB token-bucket burst (burst_bytes) matters little (~10%)
    if kind == "proxy":
        plane = DataPlane(served_models(model[0], PRE), max_delay_ms=0)
        with (
            BackgroundServer(create_app(plane)) as srv,
            ProxyLink(LinkSpec(300, rtt_ms=0), (srv.host, srv.port)) as link,
        ):
            _run_and_check(EdgeRunner(model, "split", f"http://{link.proxy_host}:{link.proxy_port}", codec="fp32"), 300)
    else:
        with (
            NetnsCloud(model) as (link, url),
            link.edge(),
        ):  # the server in the cloud namespace, the runner in the edge's
            _run_and_check(EdgeRunner(model, "split", url, codec="fp32"), 300)


def _run_and_check(runner, kbps):
    runner.probe_rtt()
    got = [runner.predict(face).breakdown for face in FACES[:12]]
    assert not any(b.fallback for b in got)
    estimate = runner.link.estimate()
    runner.close()
    last = got[-1]

    def effective(size: int) -> float:  # what the link delivers: a full bucket at once, then the rate
        return kbps * size / (size - burst_bytes(kbps * 1000))

    assert estimate.up_kbps == pytest.approx(effective(last.bytes_up), rel=0.25)
    assert estimate.down_kbps == pytest.approx(effective(last.bytes_down), rel=0.25)
    # and it predicts what the network took
    assert estimate.transfer_ms(last.bytes_up, last.bytes_down) == pytest.approx(
        last.upload_ms + last.download_ms, rel=0.15
    )


class NetnsCloud:
    """A BackgroundServer whose socket lives in the cloud namespace of a NetnsLink."""

    def __init__(self, model):
        from edgefer.netem import NetnsLink

        self.link = NetnsLink(LinkSpec(300, rtt_ms=0), tag=f"o{time.monotonic_ns() % 100000}")
        self.model = model

    def __enter__(self):
        self.link.__enter__()
        with self.link.cloud():
            self.server = BackgroundServer(
                create_app(DataPlane(served_models(self.model[0], PRE), max_delay_ms=0)), host=self.link.cloud_ip
            )
        self.server.start()
        return self.link, self.server.url

    def __exit__(self, *exc):
        self.server.stop()
        self.link.__exit__(*exc)


# -- the planner -----------------------------------------------------------------------------------

STAGES = ["conv1", "maxpool", "stage2", "attention", "stage3", "stage4", "conv5", "pool", "fc"]


def _profile(edge_ms_per_stage: float) -> Profile:
    sizes = {"cloud": (2000, 200), "split@stage2:feature": (8000, 8000)}
    sizes |= {f"split@{s}:logits": (30_000 // (i + 1), 200) for i, s in enumerate(STAGES[:-1])}
    cloud = {"full": 9.0, "split-stage2": 0.3, **{f"suffix-{s}": 9.0 * (1 - i / 9) for i, s in enumerate(STAGES[:-1])}}
    return Profile(STAGES, dict.fromkeys(STAGES, edge_ms_per_stage), 0.5, cloud, sizes)


def test_planner_keeps_work_local_when_the_cloud_is_gone_or_the_link_is_slow():
    planner = Planner(_profile(1.0))
    fast = LinkEstimate(rtt_ms=2, up_kbps=10_000, down_kbps=10_000)
    assert planner.choose(fast, cloud_available=False) == Plan("edge")
    assert planner.choose(None) == Plan("edge")
    slow = LinkEstimate(rtt_ms=50, up_kbps=10, down_kbps=10)
    assert Planner(_profile(20.0)).choose(slow) == Plan("edge")  # even a slow device: 2 KB at 10 KB/s is 200 ms


def test_planner_offloads_a_very_slow_device_over_a_fast_link():
    planner = Planner(_profile(30.0))  # 270 ms on the device
    plan = planner.choose(LinkEstimate(rtt_ms=2, up_kbps=5000, down_kbps=5000))
    assert plan.kind != "edge"
    assert planner.predict(plan, LinkEstimate(2, 5000, 5000)) < planner.predict(Plan("edge"), None)


def test_planner_learns_a_slower_device_and_the_cloud_compute():
    planner = Planner(_profile(2.0))  # 18.5 ms profiled; sending the face would take 22 ms
    link = LinkEstimate(rtt_ms=2, up_kbps=200, down_kbps=200)
    assert planner.choose(link) == Plan("edge")
    planner.observe_edge(Plan("edge"), 500.0)  # one spike does not flip the choice
    assert planner.choose(link) == Plan("edge")
    for _ in range(10):
        planner.observe_edge(Plan("edge"), 120.0)  # the device is busier than when profiled
    assert planner.choose(link).kind != "edge"
    for _ in range(10):
        planner.observe_cloud("full", 500.0)  # and the cloud is overloaded
    assert planner.choose(link).model != "full"


def test_plan_names_round_trip():
    for name in ("edge", "cloud", "split@stage2:feature", "split@conv1:logits"):
        assert Plan.parse(name).name == name
    assert Plan.parse("split@stage3:logits").model == "suffix-stage3"
    assert Plan.parse("split@stage2:feature").model == "split-stage2"
    with pytest.raises(ValueError, match="not a plan"):
        Plan.parse("split@stage2")


# -- auto in the runtime ---------------------------------------------------------------------------


def test_auto_without_a_cloud_runs_locally_and_answers_every_request(model):
    runner = EdgeRunner(model, "auto", "http://127.0.0.1:9", timeout=0.5)  # nothing listens on port 9
    plans = [runner.predict(face).breakdown.plan for face in FACES[:5]]
    assert set(plans) == {"edge"}


def test_auto_offloads_a_very_slow_device_and_stays_local_on_a_fast_one(model, server):
    with EdgeRunner(model, "auto", server.url, slowdown=40) as slow:
        plans = [slow.predict(face).breakdown.plan for face in FACES[:8]]
    assert all(p != "edge" for p in plans[2:]), plans
    # A fast device on a really slow link (5 KB/s through the shaping proxy): the probes confirm it
    with (
        ProxyLink(LinkSpec(rate_kbps=5, rtt_ms=0), (server.host, server.port)) as link,
        EdgeRunner(model, "auto", f"http://{link.proxy_host}:{link.proxy_port}", probe_every=5) as fast,
    ):
        fast.planner = Planner(fast.profile(FACES[0]))
        fast.link.observe_rtt(1.0)
        fast.link.observe(8000, 200, 1 + 8000 / 5)  # what 5 KB/s looks like
        plans = [fast.predict(face).breakdown.plan for face in FACES[:10]]
    assert plans.count("edge") >= 8  # local, but for the occasional probe
    assert any(p != "edge" for p in plans)


def test_auto_answers_match_the_edge(model, server):
    edge = EdgeRunner(model, "edge")
    with EdgeRunner(model, "auto", server.url, codec="fp32", slowdown=40) as auto:
        for face in FACES[:5]:
            got = auto.predict(face)
            assert np.allclose(got.logits, edge.predict(face).logits, atol=1e-4), got.breakdown.plan


def test_slowdown_pads_each_edge_step_to_factor_times_its_time():
    net = build("shufflenet", num_classes=7).eval()
    runner = EdgeRunner((net, {"classes": CLASSES, "preprocess": vars(PRE)}), "edge", slowdown=3.0)
    start = time.perf_counter() - 0.010  # a step that took 10 ms
    padded = runner._pad(start)
    assert 30.0 <= padded < 30.0 + 100.0  # never less; more only by scheduling delay
    fast = EdgeRunner((net, {"classes": CLASSES, "preprocess": vars(PRE)}), "edge")
    fast.predict(FACES[0])
    runner.predict(FACES[0])
    t_fast = np.median([fast.predict(f).breakdown.edge_ms for f in FACES[:9]])
    t_slow = np.median([runner.predict(f).breakdown.edge_ms for f in FACES[:9]])
    assert t_slow / t_fast > 2.0
    with pytest.raises(ValueError, match="slowdown must be >= 1"):
        EdgeRunner((net, {"classes": CLASSES, "preprocess": vars(PRE)}), "edge", slowdown=0.5)


# -- the bench ---------------------------------------------------------------------------------------


def test_parse_devices():
    assert parse_devices("laptop,phone,watch=6") == {"laptop": 1.0, "phone": 2.25, "watch": 6.0}
    with pytest.raises(ValueError, match="unknown device"):
        parse_devices("toaster")
    with pytest.raises(ValueError, match=">= 1"):
        parse_devices("fast=0.5")


@pytest.mark.skipif(not NETNS_OK, reason=f"no network namespaces here: {WHY_NOT}")
def test_bench_teardown_leaves_no_namespace_qdisc_or_server():
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    with pytest.raises(KeyError), start_cloud(LinkSpec(500, 0)) as cloud:
        process, ns = cloud.process, cloud.link.edge_ns
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        raise KeyError("boom")
    assert process.poll() is not None
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before
    assert ns not in subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout


def test_offload_bench_cli_writes_records_and_a_plot(tmp_path):
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    out, plot = tmp_path / "o.json", tmp_path / "o.png"
    args = ["offload-bench", "--images", photo, "--bandwidths", "500", "--requests", "3", "--devices", "laptop,slow=3",
            "--strategies", "edge,split,auto", "--json", str(out), "--plot", str(plot)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())["records"]
    assert len(records) == 2 * 3
    keys = {"device", "bandwidth_kbps", "strategy", "median_ms", "p90_ms", "bytes_up", "bytes_down"}
    assert all(keys <= set(r) for r in records)
    split = next(r for r in records if r["strategy"] == "split")
    assert split["bytes_up"] > 1000 and split["bytes_down"] > 1000
    assert next(r for r in records if r["strategy"] == "edge")["bytes_up"] == 0
    assert plot.stat().st_size > 10_000


def test_planner_corrects_an_optimistic_plan_after_running_it():
    planner = Planner(_profile(2.0))
    link = LinkEstimate(rtt_ms=2, up_kbps=5000, down_kbps=5000)
    first = planner.choose(link)
    assert first.kind != "edge"
    for _ in range(5):
        planner.observe_total(first, link, 500.0)  # it really takes 500 ms
    second = planner.choose(link)
    assert second != first
    assert planner.predict(first, link) > 300
    for _ in range(200):  # corrections of plans not run fade, so it gets another chance later
        planner.observe_total(second, link, planner.model(second, link))
    assert planner.predict(first, link) < 100
