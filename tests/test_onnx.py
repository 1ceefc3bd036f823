"""torch.onnx.export of the full model and of each split part, checked in ONNX Runtime."""

import numpy as np
import pytest
import torch

from edgefer.models import build
from edgefer.onnxrt import export_onnx, ort_session, run_onnx


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build("shufflenet_asp_sfp").eval()


def _check(module, example, path, batch_sizes=(1,)):
    export_onnx(module, example, path)
    session = ort_session(path, threads=2)
    for n in batch_sizes:
        x = torch.randn(n, *example.shape[1:])
        with torch.no_grad():
            expected = module(x).numpy()
        np.testing.assert_allclose(run_onnx(session, x), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_full_model_matches_onnxruntime_with_a_dynamic_batch(model, tmp_path):
    _check(model, torch.randn(1, 3, 224, 224), tmp_path / "full.onnx", batch_sizes=(1, 3))


@pytest.mark.slow
def test_each_split_part_matches_onnxruntime(model, tmp_path):
    head, cloud, tail = model.split(after="stage2")
    image = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        feature = head(image)
    _check(head, image, tmp_path / "head.onnx")
    _check(cloud, feature, tmp_path / "cloud.onnx", batch_sizes=(1, 2))
    _check(tail, feature, tmp_path / "tail.onnx")
