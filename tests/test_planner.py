"""The planner: each plan's predicted latency, the choice, and what it learns from the plans it runs."""

import pytest

from edgefer.edge.estimator import LinkEstimate
from edgefer.edge.planner import FIXED_PLANS, STRATEGIES, Plan, Planner, Profile

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


def _reported(planner: Planner) -> Planner:
    """As if the server had reported every cloud model's compute (as it does with each answer)."""
    for model, ms in list(planner.profile.cloud_ms.items()):
        planner.observe_cloud(model, ms)
    return planner


def test_planner_learns_a_slower_device_and_the_cloud_compute():
    planner = _reported(Planner(_profile(2.0)))  # 18.5 ms profiled; sending the face would take 22 ms
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


def test_planner_corrects_an_optimistic_plan_after_running_it():
    planner = _reported(Planner(_profile(2.0)))
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


def test_strategies_and_fixed_plans_are_declared_once():
    assert set(FIXED_PLANS) < set(STRATEGIES) and {"auto", "escalate"} <= set(STRATEGIES)
    assert [p.model for p in FIXED_PLANS.values()] == [None, "split-stage2", "full"]


def test_an_untried_cloud_plan_that_could_win_is_tried_once_and_its_report_then_decides():
    planner = Planner(_profile(2.0))  # 18.5 ms on the device; the local guess of the cloud's full model: 9 ms
    link = LinkEstimate(rtt_ms=2, up_kbps=200, down_kbps=200)  # the face: 13 ms without the cloud's compute
    assert planner.choose(link) == Plan("cloud")  # could beat the device: tried
    planner.observe_cloud("full", 2.0)  # the server's model is faster than the local guess
    assert planner.choose(link) == Plan("cloud")  # 15 ms < 18.5 ms: kept
    slow = Planner(_profile(2.0))
    slow.observe_cloud("full", 30.0)  # a slow server
    assert slow.choose(link) != Plan("cloud")
    hopeless = Planner(_profile(2.0))
    crawl = LinkEstimate(rtt_ms=50, up_kbps=10, down_kbps=10)  # even without compute, worse than the device
    assert hopeless.choose(crawl) == Plan("edge")
