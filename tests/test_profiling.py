"""MAC counting and the interleaved timer."""

import torch
from torch import nn

from edgefer.bench.profiling import count_macs, count_params, time_interleaved
from edgefer.models import build


def test_macs_are_multiply_accumulates_not_flops():
    conv = nn.Conv2d(3, 8, kernel_size=3, padding=1, bias=False)
    assert count_macs(conv, torch.randn(1, 3, 10, 10)) == 8 * 3 * 3 * 3 * 10 * 10
    assert count_macs(nn.Linear(10, 20), torch.randn(1, 10)) == 200


def test_shufflenet_macs_match_torchvisions_published_0_14_g():
    # torchvision lists ShuffleNetV2 x1.0 at 0.14 "GFLOPS" (really GMACs) at 224 px, 1000 classes.
    macs = count_macs(build("shufflenet", num_classes=1000), torch.randn(1, 3, 224, 224))
    assert 0.14e9 <= macs < 0.15e9
    assert count_params(build("shufflenet", num_classes=1000)) == 2_278_604  # torchvision's num_params


def test_time_interleaved_returns_a_median_per_call():
    calls = {"fast": lambda: None, "slow": lambda: sum(range(20_000))}
    times = time_interleaved(calls, rounds=3, per_round=3, warmup=1)
    assert set(times) == {"fast", "slow"}
    assert 0 < times["fast"] < times["slow"]
