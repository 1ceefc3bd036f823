"""Post-hoc logit adjustment: the bias shift equals the logit shift, and `edgefer adjust` writes a checkpoint."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import tiny_fer2013_csv, tiny_net
from edgefer.cli.main import app
from edgefer.loading import load_checkpoint
from edgefer.train.adjust import adjust_logits, final_linear

runner = CliRunner()


def test_the_bias_shift_is_the_logit_shift():
    net = tiny_net()
    x = torch.randn(3, 3, 64, 64)
    before = net(x)
    log_prior = torch.tensor([0.14, 0.015, 0.14, 0.25, 0.17, 0.11, 0.175]).log()
    adjust_logits(net, log_prior, 0.5)
    assert torch.allclose(net(x), before - 0.5 * log_prior, atol=1e-5)


def test_a_model_without_one_final_linear_is_refused():
    two_heads = nn.Sequential(nn.Linear(4, 7), nn.Linear(7, 7))
    with pytest.raises(ValueError):
        final_linear(two_heads, 7)
    with pytest.raises(ValueError):
        final_linear(nn.Sequential(nn.Conv2d(3, 7, 1)), 7)
    with pytest.raises(ValueError):
        adjust_logits(nn.Sequential(nn.Linear(4, 7, bias=False)), torch.zeros(7), 1.0)


def test_adjust_writes_an_adjusted_checkpoint_and_refuses_a_negative_tau(tiny_checkpoint, tmp_path):
    data = tiny_fer2013_csv(tmp_path)
    out = tmp_path / "adjusted"
    args = ["adjust", "--checkpoint", str(tiny_checkpoint), "--data", str(data), "--out", str(out)]
    assert runner.invoke(app, [*args, "--tau", "-1"]).exit_code == 2
    assert not out.exists()
    result = runner.invoke(app, [*args, "--tau", "1", "--tta", "none"])
    assert result.exit_code == 0, result.output
    original, _ = load_checkpoint(tiny_checkpoint)
    adjusted, meta = load_checkpoint(out)
    prior = torch.tensor(list(meta["logit_adjust"]["prior"].values()))
    assert meta["logit_adjust"]["tau"] == 1.0 and prior.sum().item() == pytest.approx(1.0)
    assert torch.allclose(adjusted.fc.bias, original.fc.bias - prior.log(), atol=1e-6)
    assert "escalation" not in meta and meta["metrics"]["n"] == 20
