"""The device side: EdgeRunner's strategies agree, the breakdown is filled in, the cloud can fail and
come back, escalation asks the larger model, and a slower device is emulated exactly."""

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import CLASSES, FACES, META, tiny_net
from edgefer.edge import CloudClient, CloudDown, CloudError, Device, EdgeRunner
from edgefer.loading import wrap_model
from edgefer.serving import BackgroundServer
from edgefer.serving.process import ServerProcess, free_port


def test_strategies_agree_exactly_in_fp32(tiny, cloud):
    edge = EdgeRunner(tiny)
    with (
        EdgeRunner(tiny, strategy="split", cloud_url=cloud.url, codec="fp32") as split,
        EdgeRunner(tiny, strategy="cloud", cloud_url=cloud.url) as whole,
    ):
        for face in FACES[:6]:
            expected = edge.predict(face)
            for runner in (split, whole):
                got = runner.predict(face)
                assert not got.fallback, got.breakdown.error
                assert np.array_equal(got.logits, expected.logits), runner.strategy
                assert got.label == expected.label


def test_a_checkpoint_folder_loads_like_the_model_in_memory(tiny, tiny_checkpoint):
    np.testing.assert_array_equal(
        EdgeRunner(tiny_checkpoint).predict(FACES[0]).logits, EdgeRunner(tiny).predict(FACES[0]).logits
    )


def test_cloud_strategy_sends_png_exactly_and_jpeg_approximately(tiny, cloud):
    edge = EdgeRunner(tiny)
    with (
        EdgeRunner(tiny, strategy="cloud", cloud_url=cloud.url, image_format="png") as png,
        EdgeRunner(tiny, strategy="cloud", cloud_url=cloud.url, image_format="jpeg") as jpeg,
    ):
        for face in FACES[:3]:
            expected = edge.predict(face)
            got = png.predict(face)
            assert np.array_equal(got.logits, expected.logits) and got.breakdown.encode_ms > 0
            lossy = jpeg.predict(face)
            assert not lossy.fallback and lossy.logits.shape == expected.logits.shape


@pytest.mark.parametrize(("codec", "tolerance"), [("fp16", 1e-2), ("int8", 5e-2)])
def test_lossy_codecs_stay_within_tolerance(tiny, cloud, codec, tolerance):
    edge = EdgeRunner(tiny)
    with EdgeRunner(tiny, strategy="split", cloud_url=cloud.url, codec=codec, compression="zstd") as split:
        for face in FACES[:6]:
            expected, got = edge.predict(face), split.predict(face)
            scale = np.abs(expected.logits).max()
            np.testing.assert_allclose(got.logits, expected.logits, atol=tolerance * scale)
            assert abs(sum(got.scores.values()) - 1) < 1e-5


def test_breakdown_reports_every_step_and_the_bytes(tiny, cloud):
    with (
        EdgeRunner(tiny, strategy="split", cloud_url=cloud.url, codec="fp16", compression=None) as split,
        EdgeRunner(tiny, strategy="cloud", cloud_url=cloud.url, image_format="raw") as whole,
    ):
        b = split.predict(FACES[0]).breakdown
        assert b.strategy == "split" and b.plan == "split@stage2:feature" and not b.fallback
        assert b.edge_ms > 0 and b.encode_ms > 0 and b.cloud_ms > 0 and b.decode_ms > 0 and b.tail_ms > 0
        feature_bytes = 116 * 8 * 8 * 2  # the fp16 Stage2 map at 64 px
        assert feature_bytes < b.bytes_up < feature_bytes + 1000 and feature_bytes < b.bytes_down < feature_bytes + 1000
        assert b.total_ms >= b.edge_ms + b.tail_ms
        c = whole.predict(FACES[0]).breakdown
        assert 48 * 48 < c.bytes_up < 48 * 48 + 1000 and c.bytes_down < 1000 and c.edge_ms == 0
    assert EdgeRunner(tiny).predict(FACES[0]).breakdown.bytes_up == 0


def test_unreachable_cloud_falls_back_locally_and_is_marked_down(tiny):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    edge = EdgeRunner(tiny)
    with EdgeRunner(tiny, strategy="split", cloud_url=url, codec="fp32", timeout=0.5, probe_interval=60) as split:
        first = split.predict(FACES[0])
        assert first.fallback and "Connect" in first.breakdown.error
        assert np.array_equal(first.logits, edge.predict(FACES[0]).logits)
        second = split.predict(FACES[1])  # marked down: not tried at all
        assert second.fallback and "marked down" in second.breakdown.error
        assert split.client.downs == 1


def test_a_down_cloud_is_probed_and_marked_up_as_soon_as_it_answers(tiny):
    ready = {"status": 503}

    async def health(request):
        return JSONResponse({}, status_code=ready["status"])

    app = Starlette(routes=[Route("/v2/health/ready", health)])
    with BackgroundServer(app) as srv:
        client = CloudClient(srv.url, probe_interval=3600)  # the probe thread waits: we probe by hand
        try:
            client.mark_down("test")
            assert not client.available
            assert not client.probe_once()  # still not ready: stays down
            ready["status"] = 200
            assert client.probe_once() and client.available  # the first answer brings it back
        finally:
            client.close()


def test_5xx_falls_back_and_4xx_is_raised(tiny):
    async def broken(request):
        return JSONResponse({"error": "boom"}, status_code=503)

    async def refused(request):
        return JSONResponse({"error": "missing or wrong bearer token"}, status_code=401)

    for handler, expect_fallback in ((broken, True), (refused, False)):
        app = Starlette(routes=[Route("/v2/models/{name}/infer", handler, methods=["POST"])])
        with BackgroundServer(app) as srv, EdgeRunner(tiny, strategy="cloud", cloud_url=srv.url) as runner:
            if expect_fallback:
                prediction = runner.predict(FACES[0])
                assert prediction.fallback and "HTTP 503" in prediction.breakdown.error
            else:
                with pytest.raises(CloudError, match="HTTP 401"):
                    runner.predict(FACES[0])


def test_bad_input_and_options_are_refused(tiny):
    with pytest.raises(ValueError, match="grayscale uint8"):
        EdgeRunner(tiny).predict(np.zeros((48, 48, 3), np.uint8))
    with pytest.raises(ValueError, match="needs a cloud_url"):
        EdgeRunner(tiny, strategy="split")
    with pytest.raises(ValueError, match="unknown strategy"):
        EdgeRunner(tiny, strategy="sideways")
    with pytest.raises(TypeError):
        EdgeRunner(tiny, "split", "http://127.0.0.1:9")  # keyword-only after the model


def test_a_slower_device_pads_each_step_by_its_factor_exactly():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    device = Device(2.5, clock=lambda: now[0], sleep=sleep)
    start = device.now()
    now[0] += 0.004  # the step took 4 ms
    assert device.pad(start) == pytest.approx(10.0)  # padded to 2.5 x 4 ms
    assert slept == [pytest.approx(0.006)]
    assert Device(1.0, clock=lambda: now[0], sleep=sleep).pad(now[0] - 0.002) == pytest.approx(2.0)
    assert len(slept) == 1  # the real device is not padded
    with pytest.raises(ValueError, match="slowdown"):
        Device(0.5)


def test_every_edge_step_of_a_request_goes_through_the_device(tiny, cloud):
    pads = []

    class Recording(Device):
        def pad(self, start):
            pads.append(start)
            return super().pad(start)

    with EdgeRunner(tiny, strategy="split", cloud_url=cloud.url, device=Recording()) as split:
        split.predict(FACES[0])
    assert len(pads) == 6  # prepare + head, encode the map, the message, decode the message, the map, tail


def test_escalation_asks_the_large_model_only_below_the_threshold(tiny, cloud):
    edge = EdgeRunner(tiny)
    with (
        EdgeRunner(tiny, strategy="escalate", cloud_url=cloud.url, escalate_threshold=2.0) as always,
        EdgeRunner(tiny, strategy="escalate", cloud_url=cloud.url, escalate_threshold=-1.0) as never,
    ):
        sent = always.predict(FACES[0])
        assert sent.breakdown.escalated and sent.breakdown.bytes_up > 0 and 0 <= sent.breakdown.confidence <= 1
        np.testing.assert_allclose(sent.logits, edge.predict(FACES[0]).logits, atol=1e-5)  # the cloud's large = tiny
        kept = never.predict(FACES[0])
        assert not kept.breakdown.escalated and kept.breakdown.bytes_up == 0


def test_escalation_keeps_the_device_answer_and_flags_it_when_the_cloud_is_down(tiny):
    url = f"http://127.0.0.1:{free_port()}"
    with EdgeRunner(tiny, strategy="escalate", cloud_url=url, escalate_threshold=2.0, probe_interval=60) as runner:
        p = runner.predict(FACES[0])
    assert p.fallback and not p.breakdown.escalated
    np.testing.assert_array_equal(p.logits, EdgeRunner(tiny).predict(FACES[0]).logits)


def test_escalation_rate_needs_a_calibration_and_uses_it():
    from edgefer.escalation import calibrate

    meta = {**META, "escalation": calibrate(np.random.default_rng(0).normal(size=(500, 7)), "margin")}
    model = wrap_model(tiny_net(), meta)
    runner = EdgeRunner(model, strategy="escalate", cloud_url="http://127.0.0.1:9", escalate_rate=0.5)
    assert runner.threshold == pytest.approx(meta["escalation"]["quantiles"][50])
    with pytest.raises(ValueError, match="calibration"):
        EdgeRunner(wrap_model(tiny_net(), META), strategy="escalate", cloud_url="http://x", escalate_rate=0.5)
    with pytest.raises(ValueError, match="exactly one"):
        EdgeRunner(model, strategy="escalate", cloud_url="http://x")


def test_a_batch_of_faces_is_one_forward_pass_with_the_same_answers(tiny):
    runner = EdgeRunner(tiny)
    batch = runner.predict_batch(list(FACES[:5]))
    for face, got in zip(FACES[:5], batch, strict=True):
        np.testing.assert_allclose(got.logits, runner.predict(face).logits, atol=1e-5)


@pytest.mark.slow
def test_killing_the_server_mid_run_loses_no_request(tiny_checkpoint):
    server = ServerProcess(["--checkpoint", str(tiny_checkpoint), "--max-delay-ms", "0", "--no-large"])
    with server:
        answers = []
        # a generous timeout: a slow answer on a loaded machine must not count as a fallback; once the
        # server is stopped, its port refuses at once
        with EdgeRunner(tiny_checkpoint, strategy="split", cloud_url=server.url, codec="fp16", timeout=60) as runner:
            for i in range(50):
                if i == 25:
                    server.stop()
                answers.append(runner.predict(FACES[i % len(FACES)]))
    assert len(answers) == 50 and all(a.label in CLASSES for a in answers)
    assert not any(a.fallback for a in answers[:25])
    assert all(a.fallback for a in answers[25:])


@pytest.mark.slow
def test_the_server_serves_the_shipped_large_model_as_full_large_by_default(tiny_checkpoint):
    from edgefer.loading import load_model
    from edgefer.wire import TensorData

    server = ServerProcess(["--checkpoint", str(tiny_checkpoint), "--max-delay-ms", "0", "--full-runtime", "auto"])
    with server:
        client = CloudClient(server.url)
        try:
            served = client.infer("full-large", TensorData("image", FACES[:2])).message.tensor("logits").data
        finally:
            client.close()
    large = load_model("default-large")
    assert large.meta.name == "ensemble"
    local = [got.logits for got in EdgeRunner(large).predict_batch(list(FACES[:2]))]
    np.testing.assert_allclose(served, np.stack(local), atol=1e-4)


def test_cloud_down_is_raised_by_the_client_when_marked_down():
    client = CloudClient("http://127.0.0.1:9", probe_interval=3600)
    try:
        client.mark_down("test")
        from edgefer.wire import TensorData

        with pytest.raises(CloudDown, match="marked down"):
            client.infer("full", TensorData("image", np.zeros((1, 48, 48), np.uint8)))
    finally:
        client.close()
