"""The pretrained default model shipped inside the package."""

import json

import numpy as np
import pytest
import torch

from edgefer.pretrained import DEFAULT_CHECKPOINT, load_pretrained, resolve_checkpoint
from edgefer.train import CheckpointError

shipped = pytest.mark.skipif(
    not (DEFAULT_CHECKPOINT / "model.json").is_file(), reason="this checkout ships no default weights yet"
)


@shipped
def test_default_model_loads_offline_and_predicts():
    net, meta = load_pretrained()
    assert not net.training
    assert meta["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    size = meta["preprocess"]["size"]
    with torch.inference_mode():
        logits = net(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    # how it was trained travels with it
    assert meta["recipe"]["name"] and meta["data"]["train"] and 0 < meta["metrics"]["accuracy"] <= 1
    assert (DEFAULT_CHECKPOINT / "model.safetensors").stat().st_size <= 10 * 1024 * 1024


@shipped
def test_default_metadata_records_publictest_accuracy():
    meta = json.loads((DEFAULT_CHECKPOINT / "model.json").read_text())
    assert meta["data"]["val"].endswith("PublicTest")
    assert np.isfinite(meta["metrics"]["accuracy"])


def test_the_cloud_model_loads_offline_and_predicts():
    large = DEFAULT_CHECKPOINT.parent / "default-large"
    net, meta = load_pretrained("default-large")
    size = meta["preprocess"]["size"]
    with torch.inference_mode():
        logits = net(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 7) and torch.isfinite(logits).all()
    # a pruned ResNet18 that also sees the mirrored face (flip TTA inside the model, for the server)
    assert meta["build"]["name"] == "ensemble" and meta["build"]["mirror"]
    (member,) = meta["build"]["members"]
    assert member["name"] == "resnet18" and len(member["branch_widths"]) == 8
    # stored as INT8 to stay under the repository's 10 MB a file, loaded as float32
    assert meta["weights_dtype"] == "int8" and {p.dtype for p in net.parameters()} == {torch.float32}
    assert (large / "model.safetensors").stat().st_size <= 10 * 1024 * 1024
    # its own score, as `edgefer ensemble --data` stored it (PublicTest, the INT8 weights, mirrored inside the model)
    assert meta["metrics"]["n"] == 3589 and meta["metrics"]["accuracy"] > 0.69


def test_checkpoint_paths_resolve():
    assert resolve_checkpoint("runs/x/best").as_posix() == "runs/x/best"
    if not (DEFAULT_CHECKPOINT / "model.json").is_file():
        with pytest.raises(CheckpointError, match="no pretrained default model"):
            resolve_checkpoint("default")
    else:
        assert resolve_checkpoint("default") == DEFAULT_CHECKPOINT


def test_the_package_exposes_load_pretrained():
    import edgefer

    net, meta = edgefer.load_pretrained()
    assert meta["build"]["name"] == "shufflenet_asp_sfp" and not net.training
    with pytest.raises(AttributeError):
        edgefer.no_such_thing  # noqa: B018
