"""EdgeRunner: the three strategies agree, the breakdown is filled in, and the cloud can fail."""

import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import torch
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from edgefer.data import Preprocess
from edgefer.edge import CloudError, EdgeRunner
from edgefer.models import build
from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models
from edgefer.train import load_checkpoint, save_checkpoint

PRE = Preprocess(size=64, mean=0.5, std=0.25)
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
FACES = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(folder, build("shufflenet_asp_sfp", wavelet="haar"), {"classes": CLASSES, "preprocess": vars(PRE)})
    return folder


@pytest.fixture(scope="module")
def server(checkpoint):
    net, _ = load_checkpoint(checkpoint)
    with BackgroundServer(create_app(DataPlane(served_models(net, PRE), max_delay_ms=0))) as srv:
        yield srv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_strategies_agree_exactly_in_fp32(checkpoint, server):
    edge = EdgeRunner(checkpoint, "edge")
    with (
        EdgeRunner(checkpoint, "split", server.url, codec="fp32") as split,
        EdgeRunner(checkpoint, "cloud", server.url) as cloud,
    ):
        for face in FACES:
            expected = edge.predict(face)
            for runner in (split, cloud):
                got = runner.predict(face)
                assert not got.fallback, got.breakdown.error
                assert np.array_equal(got.logits, expected.logits), runner.strategy
                assert got.label == expected.label


def test_cloud_strategy_sends_png_exactly_and_jpeg_approximately(checkpoint, server):
    edge = EdgeRunner(checkpoint, "edge")
    with (
        EdgeRunner(checkpoint, "cloud", server.url, image_format="png") as png,
        EdgeRunner(checkpoint, "cloud", server.url, image_format="jpeg") as jpeg,
    ):
        for face in FACES[:3]:
            expected = edge.predict(face)
            got = png.predict(face)
            assert np.array_equal(got.logits, expected.logits) and got.breakdown.encode_ms > 0
            lossy = jpeg.predict(face)
            assert not lossy.fallback and lossy.logits.shape == expected.logits.shape


@pytest.mark.parametrize(("codec", "tolerance"), [("fp16", 1e-2), ("int8", 5e-2)])
def test_lossy_codecs_stay_within_tolerance(checkpoint, server, codec, tolerance):
    edge = EdgeRunner(checkpoint, "edge")
    with EdgeRunner(checkpoint, "split", server.url, codec=codec, compression="zstd") as split:
        for face in FACES:
            expected, got = edge.predict(face), split.predict(face)
            scale = np.abs(expected.logits).max()
            np.testing.assert_allclose(got.logits, expected.logits, atol=tolerance * scale)
            assert abs(sum(got.scores.values()) - 1) < 1e-5


def test_breakdown_reports_every_step_and_the_bytes(checkpoint, server):
    with (
        EdgeRunner(checkpoint, "split", server.url, codec="fp16", compression=None) as split,
        EdgeRunner(checkpoint, "cloud", server.url, image_format="raw") as cloud,
    ):
        b = split.predict(FACES[0]).breakdown
        assert b.strategy == "split" and not b.fallback
        assert b.edge_ms > 0 and b.encode_ms > 0 and b.cloud_ms > 0 and b.decode_ms > 0 and b.tail_ms > 0
        feature_bytes = 116 * 8 * 8 * 2  # the fp16 Stage2 map at 64 px
        assert feature_bytes < b.bytes_up < feature_bytes + 1000 and feature_bytes < b.bytes_down < feature_bytes + 1000
        assert b.total_ms >= b.edge_ms + b.tail_ms
        c = cloud.predict(FACES[0]).breakdown
        assert 48 * 48 < c.bytes_up < 48 * 48 + 1000 and c.bytes_down < 1000 and c.edge_ms == 0
    assert EdgeRunner(checkpoint, "edge").predict(FACES[0]).breakdown.bytes_up == 0


def test_unreachable_cloud_falls_back_locally_and_backs_off(checkpoint):
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    edge = EdgeRunner(checkpoint, "edge")
    with EdgeRunner(checkpoint, "split", url, codec="fp32", timeout=0.5) as split:
        first = split.predict(FACES[0])
        assert first.fallback and "Connect" in first.breakdown.error
        assert np.array_equal(first.logits, edge.predict(FACES[0]).logits)
        second = split.predict(FACES[1])  # within the backoff: not tried at all
        assert second.fallback and "marked down" in second.breakdown.error


def test_5xx_falls_back_and_4xx_is_raised(checkpoint):
    async def broken(request):
        return JSONResponse({"error": "boom"}, status_code=503)

    async def refused(request):
        return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)

    for handler, expect_fallback in ((broken, True), (refused, False)):
        app = Starlette(routes=[Route("/v2/models/{name}/infer", handler, methods=["POST"])])
        with BackgroundServer(app) as srv, EdgeRunner(checkpoint, "cloud", srv.url) as runner:
            if expect_fallback:
                prediction = runner.predict(FACES[0])
                assert prediction.fallback and "HTTP 503" in prediction.breakdown.error
            else:
                with pytest.raises(CloudError, match="HTTP 401"):
                    runner.predict(FACES[0])


def test_bad_face_input_is_refused(checkpoint):
    with pytest.raises(ValueError, match="grayscale uint8 face"):
        EdgeRunner(checkpoint, "edge").predict(np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="needs a cloud_url"):
        EdgeRunner(checkpoint, "split")


def test_killing_the_server_mid_run_loses_no_request(checkpoint):
    port = _free_port()
    exe = str(sys.executable).replace("python", "edgefer")
    process = subprocess.Popen(
        [exe, "serve", "--checkpoint", str(checkpoint), "--port", str(port), "--max-delay-ms", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        answers = []
        with EdgeRunner(checkpoint, "split", f"http://127.0.0.1:{port}", codec="fp16", timeout=1.0) as runner:
            for i in range(50):
                if i == 25:
                    process.kill()
                    process.wait()
                answers.append(runner.predict(FACES[i % len(FACES)]))
    finally:
        process.kill()
    assert len(answers) == 50 and all(a.label in CLASSES for a in answers)
    assert not any(a.fallback for a in answers[:25])
    assert all(a.fallback for a in answers[25:])
