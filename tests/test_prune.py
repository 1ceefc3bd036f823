"""`edgefer prune`: channel pruning inside ShuffleNetV2 branches and ResNet basic blocks shrinks params
and MACs, keeps the strongest channels' weights, and leaves an ordinary checkpoint that reloads,
exports and fine-tunes."""

import json

import pytest
import torch
from typer.testing import CliRunner

from conftest import META, synthetic_faces, tiny_fer2013_csv, words
from edgefer.bench.profiling import count_macs, count_params
from edgefer.cli.main import app
from edgefer.export import export_model
from edgefer.loading import load_model, save_checkpoint
from edgefer.models import build
from edgefer.pretrained import load_pretrained
from edgefer.prune import branch_widths, prune, pruned_widths
from edgefer.train import CheckpointError, RunExists, load_checkpoint

X = torch.randn(4, 3, 96, 96, generator=torch.Generator().manual_seed(0))


def _stages(net):
    return dict(net.named_children())


def test_pruned_widths_round_to_multiples_of_eight_and_refuse_bad_ratios():
    assert pruned_widths([58, 116, 232], 0.5) == [32, 56, 112]
    assert pruned_widths([58, 116, 232], 0.25) == [40, 88, 176]
    assert pruned_widths([58, 116], 0.0) == [58, 116]
    assert pruned_widths([12], 0.9) == [8]  # at least round_to channels
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="fraction of channels removed"):
            pruned_widths([58], bad)


def test_pruning_shrinks_params_and_macs_and_keeps_the_strongest_channels():
    net, _ = load_pretrained()
    with torch.no_grad():
        before = net(X)
    old_first = net.stage3[1].branch2[0].weight.detach().clone()  # (116, 116, 1, 1)
    old_last = net.stage3[1].branch2[5].weight.detach().clone()
    params, macs = count_params(net), count_macs(net, X[:1])

    prune(net, 0.0)  # a no-op
    with torch.no_grad():
        assert torch.equal(net(X), before)

    prune(net, 0.5)
    widths = branch_widths(_stages(net))
    assert widths == [32] * 4 + [56] * 8 + [112] * 4
    assert net.build_args["branch_widths"] == widths and net.config.branch_widths == tuple(widths)
    assert count_params(net) < 0.75 * params and count_macs(net, X[:1]) < 0.7 * macs
    # the kept channels are whole rows of the old first conv (and matching columns of the last one),
    # and they are the ones of largest norm
    new_first = net.stage3[1].branch2[0].weight.detach()
    rows = [int(torch.nonzero((old_first == row).flatten(1).all(1))[0]) for row in new_first]
    assert len(set(rows)) == 56
    assert torch.equal(net.stage3[1].branch2[5].weight.detach(), old_last[:, rows])
    dropped = sorted(set(range(116)) - set(rows))
    assert old_first[rows].flatten(1).norm(dim=1).mean() > old_first[dropped].flatten(1).norm(dim=1).mean()
    with torch.no_grad():
        assert torch.isfinite(net(X)).all()


@pytest.mark.slow
def test_a_pruned_checkpoint_reloads_and_exports(tmp_path):
    net, meta = load_pretrained()
    prune(net, 0.25)
    save_checkpoint(tmp_path / "ckpt", net, {k: meta[k] for k in ("classes", "preprocess")})
    again, again_meta = load_checkpoint(tmp_path / "ckpt")
    with torch.no_grad():
        assert torch.equal(again(X), net(X))
    assert again_meta["build"]["branch_widths"] == branch_widths(_stages(net))

    export_model(again, again_meta, tmp_path / "onnx", fmt="onnx", precision="fp32")
    exported = load_model(tmp_path / "onnx", "onnxruntime").net
    with torch.no_grad():
        assert torch.allclose(exported(X), net(X), atol=1e-4)

    # the same weights with metadata that does not say they are pruned: a clear error
    meta_json = json.loads((tmp_path / "ckpt" / "model.json").read_text())
    del meta_json["build"]["branch_widths"]
    (tmp_path / "ckpt" / "model.json").write_text(json.dumps(meta_json))
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(tmp_path / "ckpt")


def test_a_resnet_is_pruned_between_the_two_convolutions_of_each_basic_block(tmp_path):
    torch.manual_seed(0)
    net = build("resnet18").eval()
    x = X[:2, :, :64, :64]
    old_conv1 = net.layer2[1].conv1.weight.detach().clone()  # (128, 128, 3, 3)
    old_conv2 = net.layer2[1].conv2.weight.detach().clone()
    params = count_params(net)
    prune(net, 0.25)
    widths = branch_widths(_stages(net))
    assert widths == [48, 48, 96, 96, 192, 192, 384, 384]
    assert net.layer2[1].conv2.out_channels == 128 and net.layer4[0].downsample[0].out_channels == 512
    assert 0.55 * params < count_params(net) < 0.8 * params
    rows = [int(torch.nonzero((old_conv1 == row).flatten(1).all(1))[0]) for row in net.layer2[1].conv1.weight.detach()]
    assert len(set(rows)) == 96
    assert torch.equal(net.layer2[1].conv2.weight.detach(), old_conv2[:, rows])
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, 7) and torch.isfinite(out).all()
    save_checkpoint(tmp_path / "ckpt", net, META)
    again, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["build"]["branch_widths"] == widths
    with torch.no_grad():
        assert torch.equal(again(x), out)


def test_only_shufflenet_and_basic_block_resnet_models_can_be_pruned():
    for name in ("resnet50", "mobilenet_v2"):
        with pytest.raises(ValueError, match="ShuffleNetV2 and basic-block ResNet models only"):
            prune(build(name).eval(), 0.5)
    with pytest.raises(ValueError, match="ShuffleNetV2 and basic-block ResNet models only"):
        build("mobilenet_v2", branch_widths=[8] * 16)
    with pytest.raises(ValueError, match="16 positive branch widths"):
        build("shufflenet", branch_widths=[8] * 3)
    with pytest.raises(ValueError, match="8 positive branch widths"):
        build("resnet18", branch_widths=[8] * 16)


def test_cli_prunes_fine_tunes_and_evaluates(tmp_path):
    csv_path = tiny_fer2013_csv(tmp_path)
    out = tmp_path / "pruned"

    no_data = CliRunner().invoke(app, ["prune", "--out", str(out), "--finetune-epochs", "1"])
    assert no_data.exit_code != 0 and "needs --data" in no_data.output

    args = ["prune", "--ratio", "0.5", "--finetune-epochs", "1", "--data", str(csv_path), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "params 1,274,585 -> 915,493" in words(result.output) and "right after pruning" in words(result.output)
    for folder in ("pruned", "last"):
        meta = json.loads((out / folder / "model.json").read_text())
        assert meta["pruned"]["ratio"] == 0.5 and meta["pruned"]["params"] == 915_493
        assert meta["build"]["branch_widths"][0] == 32
        assert meta["preprocess"] == load_pretrained()[1]["preprocess"]  # the model's own normalisation
    assert json.loads((out / "last" / "model.json").read_text())["recipe"]["name"] == "prune"
    assert (out / "log.csv").read_text().count("\n") == 2  # header + 1 epoch
    pruned = (out / "pruned" / "model.safetensors").stat().st_mtime_ns
    again = CliRunner().invoke(app, [*args, "--ratio", "0.25", "--threads", "1"])  # over the fine-tune: refused
    assert isinstance(again.exception, RunExists)  # a CheckpointError: `edgefer` exits 2 with its message
    assert again.exception.place == (1, 0)
    assert (out / "pruned" / "model.safetensors").stat().st_mtime_ns == pruned
    resumed = CliRunner().invoke(app, [*args, "--resume", "--threads", "1"])  # finished: nothing left to do
    assert resumed.exit_code == 0, resumed.output
    assert (out / "log.csv").read_text().count("\n") == 2

    evaluated = CliRunner().invoke(
        app, ["evaluate", "--checkpoint", str(out / "last"), "--data", str(csv_path), "--split", "PublicTest", "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output)["n"] == 20


def test_keeping_the_head_needs_the_same_classes(tmp_path):
    from edgefer.data import FaceData
    from edgefer.train import RECIPES, train

    net, meta = load_pretrained()
    save_checkpoint(tmp_path / "ckpt", net, {k: meta[k] for k in ("classes", "preprocess")})
    faces = synthetic_faces(140, seed=4)
    other = FaceData(faces.images, faces.labels, tuple(f"c{i}" for i in range(7)), "other")
    with pytest.raises(ValueError, match="keeping its head needs the same classes"):
        train(
            "shufflenet", other, other, tmp_path / "r", recipe=RECIPES["prune"], init=tmp_path / "ckpt", new_head=False
        )
