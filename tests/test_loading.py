"""The loading layer: one load_model for checkpoints, exports and ensembles, typed metadata, and the
layers' imports (the device never imports the server or training)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import CLASSES, META, PRE, tiny_net
from edgefer.data import center, resize_once
from edgefer.loading import CheckpointError, load_model, make_ensemble, read_meta, save_checkpoint, wrap_model
from edgefer.loading.model import ModelMeta
from edgefer.models import build


def test_a_checkpoint_loads_with_typed_metadata_and_every_split_point(tiny_checkpoint):
    model = load_model(tiny_checkpoint)
    assert model.runtime == "torch" and model.classes == CLASSES and model.preprocess == PRE
    assert model.meta.name == "shufflenet_asp_sfp" and model.meta.build["wavelet"] == "haar"
    assert model.stage_names[:4] == ["conv1", "maxpool", "stage2", "attention"]
    assert model.meta.split_points == tuple(model.stage_names[:-1])
    x = torch.randn(2, 3, 64, 64)
    head, cloud, tail = model.split("stage2")
    torch.testing.assert_close(tail(cloud(head(x))), model(x))
    torch.testing.assert_close(model.run(x, 0, len(model.stage_names) - 1), model(x))
    with pytest.raises(ValueError, match="cannot be split after 'nowhere'"):
        model.split("nowhere")
    assert read_meta(tiny_checkpoint)["classes"] == CLASSES


def test_the_shipped_models_load_by_name_and_the_cloud_one_scored_higher():
    model = load_model("default")
    assert model.classes == CLASSES and model.meta.tta in ("flip", "none") and model.meta.metrics["accuracy"] > 0.6
    large = load_model("default-large")
    assert large.classes == CLASSES and large.meta.name == "ensemble" and large.net.mirror
    assert large.meta.metrics["accuracy"] > model.meta.metrics["accuracy"]  # both on PublicTest, flip TTA


def test_a_missing_named_model_says_so(monkeypatch, tmp_path):
    from edgefer.loading import model as model_module

    monkeypatch.setitem(model_module.NAMED, "default-large", tmp_path / "absent")
    with pytest.raises(CheckpointError, match="no 'default-large' model"):
        load_model("default-large")


def test_old_metadata_with_tta_flip_reads_as_flip():
    meta = ModelMeta.from_dict(
        {**META, "build": {"name": "x"}, "recipe": {"tta_flip": True}}, runtime="torch", source="x"
    )
    assert meta.tta == "flip"
    with pytest.raises(CheckpointError, match="incomplete"):
        ModelMeta.from_dict({"classes": CLASSES}, runtime="torch", source="x")


def test_an_ensemble_of_members_of_different_sizes_saves_and_loads_as_one_model(tmp_path):
    torch.manual_seed(0)
    small, large = build("shufflenet", num_classes=7).eval(), build("mini_xception", num_classes=7).eval()
    ensemble = make_ensemble([small, large], [48, 64])
    save_checkpoint(tmp_path, ensemble, {**META, "preprocess": {**META["preprocess"], "size": 64}})
    loaded = load_model(tmp_path)
    assert loaded.meta.name == "ensemble" and loaded.stage_names == [] and loaded.meta.split_points == ()
    faces = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    x = center(resize_once(faces, PRE.resize), PRE)
    with torch.inference_mode():
        p_small = torch.softmax(small(torch.nn.functional.interpolate(x, size=48, mode="bilinear", antialias=True)), 1)
        p_large = torch.softmax(large(x), 1)
    expected = torch.log((p_small + p_large) / 2)
    torch.testing.assert_close(loaded(x), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded(x).exp().sum(1), torch.ones(3))
    with pytest.raises(ValueError, match="cannot be split"):
        loaded.split("stage2")


def _stored_smaller(tmp_path, net, dtype):
    """Save ``net`` at float32 and at ``dtype``; the size ratio of the two files and the smaller one
    loaded back, which must say how it was stored and run in float32."""
    name = str(dtype).removeprefix("torch.")
    save_checkpoint(tmp_path / "float32", net, META)
    save_checkpoint(tmp_path / name, net, META, dtype=dtype)
    sizes = [(tmp_path / f / "model.safetensors").stat().st_size for f in ("float32", name)]
    loaded = load_model(tmp_path / name)
    assert loaded.meta.extra["weights_dtype"] == name
    assert {p.dtype for p in loaded.net.parameters()} == {torch.float32}
    return sizes[1] / sizes[0], loaded


def test_float16_weights_halve_the_file_and_load_back_as_a_float32_model(tmp_path):
    torch.manual_seed(0)
    net = build("shufflenet_asp_sfp", num_classes=7, wavelet="haar").eval()
    size_ratio, half = _stored_smaller(tmp_path, net, torch.float16)
    assert 0.45 < size_ratio < 0.55
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(half.net(x).softmax(1), net(x).softmax(1), rtol=0, atol=2e-3)
        assert not torch.equal(half.net(x), net(x))  # the weights were rounded, not kept


def test_int8_weights_quarter_the_convolutions_and_load_back_as_the_rounded_model(tmp_path):
    torch.manual_seed(0)
    net = build("resnet18", num_classes=7).eval()
    size_ratio, small = _stored_smaller(tmp_path, net, torch.int8)
    assert 0.24 < size_ratio < 0.27  # 1 byte a weight, plus one scale per output channel
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        torch.testing.assert_close(small.net(x).softmax(1), net(x).softmax(1), rtol=0, atol=2e-2)
        assert not torch.equal(small.net(x), net(x))  # the weights were rounded, not kept
        # a weight is one of 255 levels of its output channel: at most half a level from the original
        w, q = net.layer3[0].conv1.weight, small.net.layer3[0].conv1.weight
        step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
        assert ((w - q).abs() <= step / 2 + 1e-7).all() and len(torch.unique(q[0])) <= 255
        # round_as_stored gives the stored model without a trip through the disk
        from edgefer.loading import round_as_stored

        rounded = round_as_stored(net, torch.int8)
        torch.testing.assert_close(rounded(x), small.net(x), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="float32, float16, int8 or int4"):
        save_checkpoint(tmp_path / "bad", net, META, dtype=torch.bfloat16)


def test_int4_weights_take_an_eighth_and_load_back_as_the_rounded_model(tmp_path):
    torch.manual_seed(0)
    net = build("resnet18", num_classes=7).eval()
    size_ratio, small = _stored_smaller(tmp_path, net, torch.int4)
    assert 0.12 < size_ratio < 0.14  # half a byte a weight, plus one scale per output channel
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        assert not torch.equal(small.net(x), net(x))  # the weights were rounded, not kept
        # a weight is one of 15 levels of its output channel: at most half a level from the original
        for w, q in ((net.conv1[0].weight, small.net.conv1[0].weight), (net.fc.weight, small.net.fc.weight)):
            step = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True) / 7
            assert ((w - q).abs() <= step / 2 + 1e-6).all()
            assert all(len(torch.unique(row)) <= 15 for row in q)
        # the largest weight of each output channel is stored exactly (its level is +-7)
        w, q = net.layer1[0].conv2.weight.flatten(1), small.net.layer1[0].conv2.weight.flatten(1)
        top = w.abs().argmax(1, keepdim=True)
        torch.testing.assert_close(q.gather(1, top), w.gather(1, top))
        from edgefer.loading import round_as_stored

        rounded = round_as_stored(net, torch.int4)
        torch.testing.assert_close(rounded(x), small.net(x), rtol=1e-6, atol=1e-6)


def test_an_odd_number_of_int4_weights_per_channel_round_trips():
    from edgefer.loading.checkpoint import _restored, _stored

    w = torch.randn(3, 5, 3, 1)  # 15 weights a channel: the last byte holds one
    stored = _stored({"w": w}, torch.int4)
    assert stored["w"].dtype == torch.uint8 and stored["w"].shape == (3, 8)
    back = _restored(stored, "int4", {"w": w.shape})["w"]
    step = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 7
    assert back.shape == w.shape and ((w - back).abs() <= step / 2 + 1e-6).all()


@pytest.mark.parametrize("dtype", [torch.int8, torch.int4])
def test_quantised_weights_with_broken_scales_are_a_checkpoint_error(tmp_path, dtype):
    from safetensors.torch import load_file, save_file

    name = str(dtype).removeprefix("torch.")
    save_checkpoint(tmp_path / name, build("mini_xception", num_classes=7), META, dtype=dtype)
    path = tmp_path / name / "model.safetensors"
    good = load_file(path)
    key = next(k for k in good if k.endswith(":scale"))
    weight = key.removesuffix(":scale")
    broken = {
        "one scale per output channel": {**good, key: good[key][:-1]},  # one scale short
        f"{name.upper()} weights without their scales": {k: v for k, v in good.items() if k != key},
        "scales without their weights": {k: v for k, v in good.items() if k != weight},
        "Unexpected key": {**good, "extra.weight": good[weight].clone(), "extra.weight:scale": good[key].clone()},
    }
    if dtype == torch.int4:  # a byte short of the packed weights
        broken["expected INT4 weights"] = {**good, weight: good[weight][:, :-1].contiguous()}
    for message, state in broken.items():
        save_file(state, path)
        with pytest.raises(CheckpointError, match=message):
            load_model(tmp_path / name)


@pytest.mark.slow
def test_a_mirrored_ensemble_averages_both_views_ignores_a_flip_and_exports(tmp_path, monkeypatch):
    """``mirror``: flip TTA inside the model, so that the server's one-crop prediction gets it."""
    torch.manual_seed(1)
    a, b = build("shufflenet", num_classes=7).eval(), build("mini_xception", num_classes=7).eval()
    mirrored = make_ensemble([a, b], [64, 64], mirror=True).eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.inference_mode():
        views = [torch.softmax(m(v), 1) for m in (a, b) for v in (x, x.flip(-1))]
        torch.testing.assert_close(mirrored(x), torch.log(sum(views) / 4), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(mirrored(x.flip(-1)), mirrored(x), rtol=1e-5, atol=1e-5)
        plain = make_ensemble([a, b], [64, 64])(x)
    assert not torch.allclose(plain, mirrored(x))
    save_checkpoint(tmp_path / "large", mirrored, {**META, "preprocess": {**META["preprocess"], "size": 64}})
    assert load_model(tmp_path / "large").net.mirror
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path / "cache"))
    exported = load_model(tmp_path / "large", "onnxruntime", threads=1)  # as `serve` runs full-large
    with torch.inference_mode():
        torch.testing.assert_close(exported(x), mirrored(x), rtol=1e-4, atol=1e-4)


def test_wrap_model_gives_a_module_in_memory_the_same_interface():
    model = wrap_model(tiny_net(), META)
    assert model.stage_names[-1] == "fc" and model.meta.source == "<in memory>"
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 7)


def test_the_device_side_imports_neither_the_server_nor_training():
    code = (
        "import sys, json, edgefer.edge, edgefer.pipeline, edgefer.loading, edgefer.wire;"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('starlette', 'uvicorn', 'fastapi') or m.startswith(('edgefer.train', 'edgefer.serving', 'edgefer.bench')))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_the_server_does_not_import_training():
    code = "import sys, edgefer.serving; print([m for m in sys.modules if m.startswith('edgefer.train')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
