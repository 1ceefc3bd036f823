"""`edgefer export`: ONNX and OpenVINO, FP32/FP16/INT8, whole or split, checked against PyTorch; and
the exported models in `evaluate --runtime`."""

import json
import shutil

import numpy as np
import pytest
import torch
from matplotlib import cbook
from typer.testing import CliRunner

from conftest import CLASSES, META, PRE, tiny_net
from edgefer.cli.main import app
from edgefer.data import Preprocess, center, resize_once
from edgefer.export import export_model
from edgefer.faces import align_face, get_detector, to_gray
from edgefer.loading import CheckpointError, ExportError, load_model
from edgefer.loading.exported import read_export
from edgefer.photos import read_photo, sample_photos

pytestmark = pytest.mark.slow  # every export runs the ONNX / OpenVINO toolchains: 10-40 s a test


@pytest.fixture(scope="module")
def pair():
    """The tiny model as export_model takes it: the module and its metadata."""
    return tiny_net(), META


@pytest.fixture(scope="module")
def exported(pair, tmp_path_factory):
    """The tiny model's exports, each made once in this module and shared by the tests that only read
    them (one dynamo export takes ~10 s here); a test that changes an export copies it first."""
    made = {}

    def get(fmt: str, precision: str = "fp32", split_after: str | None = None):
        key = (fmt, precision, split_after)
        if key not in made:
            made[key] = tmp_path_factory.mktemp(f"{fmt}-{precision}-{split_after or 'whole'}")
            export_model(*pair, made[key], fmt=fmt, precision=precision, split_after=split_after)
        return made[key]

    return get


@pytest.fixture(scope="module")
def real_faces():
    """64 face crops from the packaged photos: shifted, scaled and mirrored variants."""
    detector, crops = get_detector("retinaface"), []
    for path in [*sample_photos(), cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)]:
        rgb = read_photo(path)
        (face,) = detector(rgb)
        for margin in np.linspace(-0.1, 0.3, 11):
            crop = align_face(to_gray(rgb), face, margin=float(margin))
            crops += [crop, crop[:, ::-1]]
    return np.ascontiguousarray(np.stack(crops[:64]))


def _torch_logits(net, meta, faces):
    pre = meta.preprocess if hasattr(meta, "preprocess") else Preprocess(**meta["preprocess"])
    with torch.inference_mode():
        return net(center(resize_once(faces, pre.resize), pre)).numpy()


@pytest.mark.parametrize(
    ("fmt", "precision", "tol"), [("onnx", "fp32", 1e-4), ("onnx", "fp16", 1e-2), ("openvino", "fp32", 1e-4)]
)
def test_export_round_trips(pair, exported, fmt, precision, tol):
    net, meta = pair
    faces = np.random.default_rng(1).integers(0, 256, (8, 48, 48), dtype=np.uint8)
    model = load_model(exported(fmt, precision), "openvino" if fmt == "openvino" else "onnxruntime")
    assert model.classes == CLASSES and model.preprocess == PRE and model.stage_names == net.stage_names
    expected = _torch_logits(net, meta, faces)
    got = _torch_logits(model.net, model.meta, faces)
    assert np.abs(got - expected).max() <= tol * max(1.0, np.abs(expected).max())


def test_split_export_writes_three_parts_that_chain_to_the_model(pair, exported):
    net, meta = pair
    folder = exported("openvino", split_after="stage2")
    sidecar = json.loads((folder / "export.json").read_text())
    assert list(sidecar["parts"]) == ["edge_head", "cloud", "edge_tail"]
    assert all((folder / f).is_file() and (folder / f).with_suffix(".bin").is_file() for f in sidecar["parts"].values())
    runners, _ = read_export(folder, "openvino")
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    x = center(resize_once(faces, PRE.resize), PRE).numpy()
    feature = runners["edge_head"](x)
    assert feature.shape[1:] == (116, 8, 8)  # the Stage2 map at 64 px
    logits = runners["edge_tail"](runners["cloud"](feature))
    assert np.abs(logits - _torch_logits(net, meta, faces)).max() < 1e-4


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_int8_agrees_with_pytorch_and_is_a_third_of_the_size(real_faces, tmp_path, fmt):
    default = load_model("default")
    net, meta = default.net, default.meta.as_dict()
    sidecar = export_model(net, meta, tmp_path / "int8", fmt=fmt, precision="int8", faces=real_faces)
    model = load_model(tmp_path / "int8", "openvino" if fmt == "openvino" else "onnxruntime")
    ours, theirs = _torch_logits(model.net, meta, real_faces), _torch_logits(net, meta, real_faces)
    agree = (ours.argmax(1) == theirs.argmax(1)).mean()
    assert agree >= 0.95 and sidecar["check"]["model"]["argmax_agreement"] >= 0.95

    size = sum(f.stat().st_size for f in (tmp_path / "int8").iterdir() if f.suffix in (".onnx", ".bin", ".xml"))
    fp32_weights = 4 * sum(p.numel() for p in net.parameters())  # an FP32 file is at least this
    # Measured: ONNX 1.78 MB (0.33x of the 5.43 MB FP32 file), OpenVINO 2.23 MB (its XML holds the QDQ graph).
    assert size <= fp32_weights / (2.8 if fmt == "onnx" else 2.2)


def test_int8_needs_calibration_faces(pair, tmp_path):
    with pytest.raises(ValueError, match="calibration faces"):
        export_model(*pair, tmp_path, precision="int8")


def test_corrupt_or_mismatched_exports_give_clear_errors(exported, tmp_path):
    with pytest.raises(ExportError, match="not an export"):
        read_export(tmp_path)
    folder = shutil.copytree(exported("onnx"), tmp_path / "export")  # spoilt below
    with pytest.raises(ExportError, match="is an export"):
        load_model(folder, "torch")
    (folder / "model.onnx").write_bytes(b"not a model at all")
    with pytest.raises(ExportError, match="cannot load it"):
        load_model(folder)
    (folder / "model.onnx").unlink()
    with pytest.raises(ExportError, match="missing"):
        load_model(folder)
    (folder / "export.json").write_text("{not json")
    with pytest.raises(ExportError, match="unreadable"):
        load_model(folder)
    with pytest.raises(CheckpointError, match="no such folder"):
        load_model(folder / "nothing")
    with pytest.raises(ValueError, match="unknown runtime"):
        load_model("default", "tensorrt")


def test_a_checkpoint_asked_for_onnxruntime_is_exported_once_into_the_cache(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEFER_CACHE", str(tmp_path))
    first = load_model(tiny_checkpoint, "onnxruntime", threads=1)
    assert first.runtime == "onnxruntime" and first.meta.split_points == ("stage2",)
    (cached,) = (tmp_path / "edgefer" / "exports").iterdir()
    stamp = (cached / "export.json").stat().st_mtime_ns
    again = load_model(tiny_checkpoint, "onnxruntime", threads=1)
    assert (cached / "export.json").stat().st_mtime_ns == stamp  # reused, not exported again
    faces = np.random.default_rng(5).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    reference = _torch_logits(load_model(tiny_checkpoint).net, META, faces)
    np.testing.assert_allclose(_torch_logits(again.net, META, faces), reference, atol=1e-4)


def test_cli_export_then_evaluate_with_onnxruntime(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["emotion,pixels,Usage"] + [
        f"{i % 7},{' '.join(map(str, rng.integers(0, 256, 48 * 48)))},PublicTest" for i in range(14)
    ]
    (tmp_path / "fer.csv").write_text("\n".join(rows) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["export", "--out", str(tmp_path / "exp"), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    args = ["evaluate", "--data", str(tmp_path / "fer.csv"), "--json", "--tta", "none"]
    ours = runner.invoke(app, [*args, "--checkpoint", str(tmp_path / "exp"), "--runtime", "onnxruntime"])
    torch_ = runner.invoke(app, [*args, "--checkpoint", "default"])
    assert ours.exit_code == 0, ours.output
    assert json.loads(ours.stdout)["accuracy"] == json.loads(torch_.stdout)["accuracy"]
    assert json.loads(ours.stdout)["n"] == 14


def test_edge_runner_and_predict_run_exports(exported, tiny):
    from edgefer.edge import EdgeRunner
    from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

    whole, split_export = exported("onnx"), exported("onnx", split_after="stage2")
    faces = np.random.default_rng(3).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    reference = EdgeRunner(tiny)
    edge = EdgeRunner(whole, runtime="onnxruntime", threads=1)
    with BackgroundServer(create_app(DataPlane(served_models(tiny), max_delay_ms=0))) as srv:
        split = EdgeRunner(split_export, strategy="split", cloud_url=srv.url, codec="fp32", runtime="onnxruntime")
        for face in faces:
            expected = reference.predict(face).logits
            assert np.abs(edge.predict(face).logits - expected).max() < 1e-4
            got = split.predict(face)
            assert not got.fallback and np.abs(got.logits - expected).max() < 1e-4
        split.close()
    with pytest.raises(ValueError, match="cannot be split after 'stage2'"):
        EdgeRunner(whole, strategy="split", cloud_url="http://127.0.0.1:9", runtime="onnxruntime")
    with pytest.raises(ValueError, match="needs a PyTorch checkpoint"):
        EdgeRunner(whole, strategy="auto", cloud_url="http://127.0.0.1:9", runtime="onnxruntime")

    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    result = CliRunner().invoke(
        app, ["predict", photo, "--json", "--checkpoint", str(whole), "--runtime", "onnxruntime"]
    )
    assert result.exit_code == 0, result.output
    (face,) = json.loads(result.stdout)["faces"]
    assert face["label"] in CLASSES


def test_serve_an_export_full_and_split(exported, tiny):
    from edgefer.edge import EdgeRunner
    from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

    models = served_models(load_model(exported("openvino", split_after="stage2")))
    assert set(models) == {"full", "split-stage2"}
    faces = np.random.default_rng(4).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    reference = EdgeRunner(tiny)
    with BackgroundServer(create_app(DataPlane(models, max_delay_ms=0))) as srv:
        for strategy in ("cloud", "split"):
            with EdgeRunner(tiny, strategy=strategy, cloud_url=srv.url, codec="fp32") as runner:
                for face in faces:
                    got = runner.predict(face)
                    assert not got.fallback, got.breakdown.error
                    assert np.abs(got.logits - reference.predict(face).logits).max() < 1e-4
