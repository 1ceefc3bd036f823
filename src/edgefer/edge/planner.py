"""Choosing where each request runs: all local, the image to the cloud, or a split after any stage.

A :class:`Plan` is one way to run a request:

* ``edge``: every stage on the device.
* ``cloud``: the (PNG) face up, logits down (the cloud's ``full`` model).
* ``split@S:feature``: stages up to S on the device, the map up, the cloud's attention chain, the
  map down, the rest on the device (the paper's round trip; S = stage2, model ``split-stage2``).
* ``split@S:logits``: stages up to S on the device, the map up, the rest in the cloud, logits down
  (Neurosurgeon-style; model ``suffix-S``).

The :class:`Planner` predicts each plan's latency from a :class:`Profile` (the device's per-stage
compute time, already multiplied by its slowdown factor; the cloud's compute per model; encoded
request and response sizes; encode/decode time) and a :class:`LinkEstimate`, and picks the lowest.
The cloud's compute starts as this machine's and is replaced by what the server reports with each
answer (its models may run on another runtime or another machine: faster or slower). A cloud plan
whose compute has never been reported is judged optimistically, by its cost without the cloud's
compute: if even that cannot beat the best plan it is not worth a try, else it is run once and
the server's report takes over (optimism under uncertainty; a pessimistic guess that is never
tested would never be corrected). The device's
from what each request's edge steps really took (a scale on the start-up profile: a device that is
busier than when it was profiled is seen as slower). What the model misses (HTTP and decoding
overheads, a link's burst allowance, queueing) is learnt per plan from the plans actually run: each
keeps observed minus predicted latency, whose recent median is added to its prediction. A plan that has not run
has no correction, so an optimistic prediction gets tried once and corrected; corrections of plans
not run fade (x0.98 a request), so a plan once found slow is tried again after conditions change.
Both the device's scale and the corrections are medians of the last few observations, not means:
latency on a shared machine has spikes, and one spike must not flip the choice.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

from ..wire.names import FULL, split_model, suffix_model
from .estimator import LinkEstimate

__all__ = ["FIXED_PLANS", "STRATEGIES", "Plan", "Planner", "Profile"]


@dataclass(frozen=True)
class Plan:
    kind: str  # edge | cloud | split
    after: str | None = None  # split: the last stage on the device
    returns: str = "logits"  # split: "feature" (the cloud runs the attention) or "logits"

    @property
    def name(self) -> str:
        return self.kind if self.kind != "split" else f"split@{self.after}:{self.returns}"

    @property
    def model(self) -> str | None:
        """The cloud model this plan calls."""
        if self.kind == "edge":
            return None
        if self.kind == "cloud":
            return FULL
        return split_model(self.after) if self.returns == "feature" else suffix_model(self.after)

    @classmethod
    def parse(cls, name: str) -> Plan:
        if name in ("edge", "cloud"):
            return cls(name)
        if name.startswith("split@") and ":" in name:
            after, returns = name[len("split@") :].split(":", 1)
            if returns in ("feature", "logits"):
                return cls("split", after, returns)
        raise ValueError(f"not a plan: {name!r} (edge, cloud, split@<stage>:feature or split@<stage>:logits)")


# How each fixed strategy runs: one plan for every request. ``auto`` chooses among plans per request;
# ``escalate`` runs ``edge`` and sends the faces it is unsure of to the cloud's larger model.
FIXED_PLANS: dict[str, Plan] = {
    "edge": Plan("edge"),
    "split": Plan("split", "stage2", "feature"),
    "cloud": Plan("cloud"),
}
STRATEGIES: tuple[str, ...] = (*FIXED_PLANS, "auto", "escalate")


@dataclass
class Profile:
    """What a request costs apart from the network; all times in ms, edge times already slowed down."""

    stages: list[str]  # in order, e.g. conv1 ... fc
    edge_ms: dict[str, float]  # per stage on the device (incl. its slowdown)
    prepare_ms: float  # resize + normalise the face on the device
    cloud_ms: dict[str, float]  # per cloud model: compute as the server reports it
    sizes: dict[str, tuple[int, int]]  # plan name -> (request bytes, response bytes)
    encode_ms: dict[str, float] = field(default_factory=dict)  # plan name -> edge-side encode + decode
    attention: str | None = "attention"  # the stage the "feature" round trip runs in the cloud

    def edge_compute(self, plan: Plan) -> float:
        """Device compute of a plan: everything but what the cloud runs."""
        if plan.kind == "cloud":
            return 0.0
        if plan.kind == "edge":
            return self.prepare_ms + sum(self.edge_ms.values())
        cut = self.stages.index(plan.after) + 1
        ms = self.prepare_ms + sum(self.edge_ms[s] for s in self.stages[:cut])
        if plan.returns == "feature":  # the tail after the attention stays on the device
            ms += sum(self.edge_ms[s] for s in self.stages[cut + 1 :])
        return ms


class Planner:
    """Predict each candidate plan's latency and pick the lowest.

    Args:
        profile: costs apart from the network.
        plans: the candidates (default: every plan the profile has sizes for, plus ``edge``).
        alpha: EWMA weight of each reported cloud compute time.
    """

    def __init__(self, profile: Profile, *, plans: list[Plan] | None = None, alpha: float = 0.3) -> None:
        self.profile = profile
        self.plans = plans or [Plan("edge"), *(Plan.parse(n) for n in profile.sizes)]
        self.alpha = alpha
        # observed / profiled device compute; the profile itself counts as three observations of 1.0
        self._scales: deque[float] = deque([1.0] * 3, maxlen=9)
        self._residuals: dict[str, deque[float]] = {}  # plan name -> observed - predicted latency, ms
        self._idle: dict[str, int] = {}  # plan name -> requests since it last ran
        self._reported: set[str] = set()  # cloud models whose compute the server has reported
        # kept up to date by the observe_* methods, so that choosing costs a few arithmetic operations a plan
        self._edge_scale = 1.0
        self._median_residual: dict[str, float] = {}
        self._edge_cost = {plan.name: profile.edge_compute(plan) for plan in self.plans}

    @property
    def edge_scale(self) -> float:
        """How much slower the device is now than when profiled (median of recent requests)."""
        return self._edge_scale

    def bias(self, plan: Plan) -> float:
        """The plan's learnt correction: the median recent residual, fading while the plan is not run."""
        median = self._median_residual.get(plan.name)
        if median is None:
            return 0.0
        return median * 0.98 ** self._idle.get(plan.name, 0)

    def predict(self, plan: Plan, link: LinkEstimate | None) -> float:
        """Predicted latency of ``plan`` in ms: the cost model plus the plan's learnt correction."""
        return self.model(plan, link) + self.bias(plan)

    def model(self, plan: Plan, link: LinkEstimate | None, *, optimistic: bool = False) -> float:
        """The cost model alone: device compute + encode + network + cloud compute (left out when
        ``optimistic`` and the server has not reported it yet)."""
        p = self.profile
        edge = self._edge_cost.get(plan.name)
        ms = (p.edge_compute(plan) if edge is None else edge) * self._edge_scale
        if plan.kind == "edge":
            return ms
        if link is None:
            return float("inf")
        up, down = p.sizes[plan.name]
        cloud = 0.0 if optimistic and plan.model not in self._reported else p.cloud_ms.get(plan.model, 0.0)
        return ms + p.encode_ms.get(plan.name, 0.0) + link.transfer_ms(up, down) + cloud

    def choose(self, link: LinkEstimate | None, cloud_available: bool = True) -> Plan:
        """The plan with the lowest predicted latency (an untried cloud plan that could beat it is tried
        first, once); ``edge`` when the cloud is unavailable."""
        if not cloud_available or link is None:
            return Plan("edge")
        costs = [(self.predict(plan, link), plan) for plan in self.plans]
        best_cost, best = min(costs, key=lambda c: c[0])
        untried = [p for p in self.plans if p.kind != "edge" and p.model not in self._reported]
        if not untried:
            return best
        hopeful = [(self.model(p, link, optimistic=True), p) for p in untried]
        cost, plan = min(hopeful, key=lambda c: c[0])
        return plan if cost < best_cost else best

    def observe_cloud(self, model: str, compute_ms: float) -> None:
        old = self.profile.cloud_ms.get(model)
        if model not in self._reported:  # the first report replaces the local guess outright
            old = None
            self._reported.add(model)
        self.profile.cloud_ms[model] = compute_ms if old is None else (1 - self.alpha) * old + self.alpha * compute_ms

    def observe_total(self, plan: Plan, link: LinkEstimate | None, total_ms: float) -> None:
        """A request ran ``plan`` in ``total_ms``; ``link`` is the estimate it was planned with."""
        predicted = self.model(plan, link)
        if predicted == float("inf"):
            return
        for name in self._idle:
            self._idle[name] += 1
        self._idle[plan.name] = 0
        residuals = self._residuals.setdefault(plan.name, deque(maxlen=5))
        residuals.append(total_ms - predicted)
        self._median_residual[plan.name] = statistics.median(residuals)

    def observe_edge(self, plan: Plan, edge_ms: float) -> None:
        """What a plan's device steps really took, against the profile's prediction."""
        profiled = self._edge_cost.get(plan.name) or self.profile.edge_compute(plan)
        if profiled > 0:
            self._scales.append(edge_ms / profiled)
            self._edge_scale = statistics.median(self._scales)

    def observe_sizes(self, plan: Plan, bytes_up: int, bytes_down: int) -> None:
        self.profile.sizes[plan.name] = (bytes_up, bytes_down)

    def table(self, link: LinkEstimate | None) -> list[tuple[str, float]]:
        """Every plan's predicted latency, best first (for logs and the bench)."""
        return sorted(((p.name, self.predict(p, link)) for p in self.plans), key=lambda r: r[1])
