"""The cloud tier on Ray Serve: the same protocol (tritonclient), the same refusals (the fuzz corpus),
the same answers as the device, the larger model for escalation, and no request lost when a replica dies."""

import threading
import time

import httpx
import numpy as np
import pytest

from conftest import FACES
from edgefer.serving.process import free_port
from fuzz_corpus import corpus

ray = pytest.importorskip("ray", reason="the Ray engine needs ray[serve] (make test installs it)")
serve = pytest.importorskip("ray.serve")
pytestmark = pytest.mark.slow  # a Ray cluster starts in this process: a minute before the first test


def test_the_config_file_is_a_valid_serve_config_whose_builder_builds_the_app():
    from pathlib import Path

    import yaml
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load((Path(__file__).resolve().parents[1] / "ray_serve.yaml").read_text())
    (application,) = ServeDeploySchema.model_validate(config).applications
    module, _, name = application.import_path.partition(":")
    builder = getattr(__import__(module, fromlist=[name]), name)
    app = builder({**application.args, "large": "none"})
    assert type(app).__name__ == "Application"


def test_a_replica_takes_more_than_a_batch_at_once():
    """Ray Serve's default of 5 ongoing requests per replica starves an 8-wide batch (measured: 8 req/s)."""
    from edgefer.serving.ray_engine import RayOptions, deployment_options

    fixed = deployment_options(RayOptions(replicas=2, max_batch_size=8))
    assert fixed["num_replicas"] == 2 and fixed["max_ongoing_requests"] > 8
    scaled = deployment_options(RayOptions(autoscale=(1, 3), max_batch_size=16))
    assert scaled["max_ongoing_requests"] > 16
    assert scaled["autoscaling_config"]["target_ongoing_requests"] <= scaled["max_ongoing_requests"]


def test_the_proxy_gets_time_to_start_unless_the_environment_says_otherwise(monkeypatch):
    import os

    from edgefer.serving.ray_engine import patient_proxy

    monkeypatch.delenv("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", raising=False)
    monkeypatch.setenv("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "7")
    patient_proxy()
    assert float(os.environ["RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"]) > 5  # Ray's default, too short under load
    assert os.environ["RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S"] == "7"


@pytest.fixture(scope="module")
def ray_cloud(tiny_checkpoint):
    """Ray Serve in this process: two replicas of the models, the tiny model also as full-large."""
    from edgefer.serving.ray_engine import RayOptions, build_app, patient_proxy

    port = free_port()
    patient_proxy()  # under load the proxy may take more than Ray's 5 s to start
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        options = RayOptions(replicas=2, max_batch_size=8, batch_wait_ms=2)
        app = build_app(str(tiny_checkpoint), str(tiny_checkpoint), full_runtime="auto", options=options)
        serve.run(app, name="edgefer", route_prefix="/")  # returns once Ray reports the application RUNNING
        url = f"http://127.0.0.1:{port}"
        while httpx.get(f"{url}/v2/health/ready", timeout=None).status_code != 200:  # the proxy learns the route
            assert serve.status().applications["edgefer"].status == "RUNNING"  # no wait on a failed deployment
            time.sleep(0.2)
        yield url
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.mark.slow
def test_ray_answers_exactly_what_the_device_computes(ray_cloud, tiny):
    from edgefer.edge import EdgeRunner

    edge = EdgeRunner(tiny)
    for strategy in ("cloud", "split"):
        with EdgeRunner(tiny, strategy=strategy, cloud_url=ray_cloud, codec="fp32") as runner:
            for face in FACES[:4]:
                got = runner.predict(face)
                assert not got.fallback, got.breakdown.error
                np.testing.assert_allclose(got.logits, edge.predict(face).logits, atol=1e-5)


@pytest.mark.slow
def test_escalation_reaches_the_large_model_on_ray(ray_cloud, tiny):
    from edgefer.edge import EdgeRunner

    with EdgeRunner(tiny, strategy="escalate", cloud_url=ray_cloud, escalate_threshold=2.0) as runner:
        got = runner.predict(FACES[0])
    assert got.breakdown.escalated and not got.fallback


@pytest.mark.slow
def test_tritonclient_drives_the_ray_engine(ray_cloud):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(ray_cloud.removeprefix("http://"))
    assert client.is_server_ready() and client.is_model_ready("full")
    image = triton.InferInput("image", [2, 48, 48], "UINT8")
    image.set_data_from_numpy(FACES[:2], binary_data=True)
    result = client.infer("full", [image], outputs=[triton.InferRequestedOutput("logits", binary_data=True)])
    assert result.as_numpy("logits").shape == (2, 7)


@pytest.mark.slow
def test_the_fuzz_corpus_gets_the_same_refusals_from_ray(ray_cloud):
    from test_hardening import _send

    port = int(ray_cloud.rsplit(":", 1)[1])
    connection_level = ("headers-", "header-")  # the HTTP server's own limits: Ray's proxy has its own
    wrong = []
    for case in corpus():
        if case.name.startswith(connection_level):
            continue
        status, body = _send(port, case)
        if not 400 <= status < 500:
            wrong.append((case.name, status, body[:120]))
    assert not wrong, wrong
    assert httpx.get(f"{ray_cloud}/v2/health/ready").status_code == 200


@pytest.mark.slow
def test_killing_a_replica_loses_no_request(ray_cloud):
    """8 clients send 1,000 requests; one model replica is killed through Ray's API midway. Every request
    gets its answer; a request the dead replica held gets a 503 and is retried (counted)."""
    face = FACES[:1].tolist()
    body = {"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 48, 48], "data": face}]}
    done, retries, lost = [], [], []
    counter = iter(range(1000))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=ray_cloud, timeout=60) as http:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                for _attempt in range(20):
                    try:
                        r = http.post("/v2/models/full/infer", json=body)
                        if r.status_code == 200:
                            break
                        assert r.status_code in (500, 502, 503), r.text  # a server-side failure: retry
                    except httpx.TransportError:
                        pass
                    with lock:
                        retries.append(1)
                    time.sleep(0.1)
                else:
                    with lock:
                        lost.append(1)
                    continue
                with lock:
                    done.append(1)

    workers = [threading.Thread(target=client) for _ in range(8)]
    for w in workers:
        w.start()
    while len(done) < 200 and any(w.is_alive() for w in workers):  # no hang if every request fails
        time.sleep(0.05)
    actors = ray.util.list_named_actors(all_namespaces=True)
    victim = next(a["name"] for a in actors if a["name"].startswith("SERVE_REPLICA::edgefer#models#"))
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    for w in workers:
        w.join()
    assert not lost and len(done) == 1000
    print(f"retries after killing {victim}: {len(retries)}")
