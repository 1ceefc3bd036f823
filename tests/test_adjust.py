"""Post-hoc logit adjustment: the bias shift equals the logit shift, and `edgefer adjust` writes a checkpoint."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from conftest import META, tiny_fer2013_csv, tiny_net
from edgefer.cli.main import app
from edgefer.loading import load_checkpoint, make_ensemble, save_checkpoint, sole_member
from edgefer.train.adjust import adjust_logits, final_linear

runner = CliRunner()
LOG_PRIOR = torch.tensor([0.14, 0.015, 0.14, 0.25, 0.17, 0.11, 0.175]).log()


def test_the_bias_shift_is_the_logit_shift():
    net = tiny_net()
    x = torch.randn(3, 3, 64, 64)
    before = net(x)
    adjust_logits(net, LOG_PRIOR, 0.5)
    assert torch.allclose(net(x), before - 0.5 * LOG_PRIOR, atol=1e-5)


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


def test_an_ensemble_is_adjusted_after_its_members_are_averaged():
    ensemble = make_ensemble([tiny_net(0), tiny_net(1)], [64, 64], mirror=True).eval()
    members_bias = [m.fc.bias.clone() for m in ensemble.members]
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        averaged = ensemble(x).softmax(1)
        adjust_logits(ensemble, LOG_PRIOR, 0.5)
        adjusted = ensemble(x).softmax(1)
    expected = averaged / LOG_PRIOR.exp() ** 0.5
    assert torch.allclose(adjusted, expected / expected.sum(1, keepdim=True), atol=1e-5)
    assert all(torch.equal(m.fc.bias, b) for m, b in zip(ensemble.members, members_bias, strict=True))
    assert ensemble.build_args["shift"] == pytest.approx((-0.5 * LOG_PRIOR).tolist())
    one = make_ensemble([tiny_net(0)], [64], mirror=True)
    assert sole_member(one) is one.members[0]
    assert sole_member(adjust_logits(one, LOG_PRIOR, 0.5)) is one  # joined whole, shift and all


def test_adjusting_a_stored_int8_ensemble_keeps_its_storage_and_its_shift_reloads(tmp_path):
    source = tmp_path / "large"
    save_checkpoint(source, make_ensemble([tiny_net(0)], [64], mirror=True), META, dtype=torch.int8)
    data, out = tiny_fer2013_csv(tmp_path), tmp_path / "adjusted"
    result = runner.invoke(app, ["adjust", "--checkpoint", str(source), "--data", str(data), "--out", str(out),
                                 "--tau", "0.25", "--tta", "none"])  # fmt: skip
    assert result.exit_code == 0, result.output
    original, _ = load_checkpoint(source)
    adjusted, meta = load_checkpoint(out)
    assert meta["weights_dtype"] == "int8"
    assert (out / "model.safetensors").stat().st_size < 1.1 * (source / "model.safetensors").stat().st_size
    prior = torch.tensor(list(meta["logit_adjust"]["prior"].values()))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = original(x).softmax(1) / prior**0.25
        assert torch.allclose(adjusted(x).softmax(1), expected / expected.sum(1, keepdim=True), atol=1e-5)
