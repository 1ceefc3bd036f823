"""The user-facing commands: `predict` (photos), `video` (clips), `demo` (the README's main job)."""

import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image
from typer.testing import CliRunner

from conftest import words
from edgefer.cli.main import app
from edgefer.edge import STRATEGIES
from edgefer.pretrained import load_pretrained

runner = CliRunner()
GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
CLASSES = load_pretrained("default")[1]["classes"]


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder with a good photo (in a sub-folder), an RGBA face, a blank image and a corrupt file."""
    root = tmp_path_factory.mktemp("photos")
    (root / "people").mkdir()
    shutil.copy(GRACE_HOPPER, root / "people" / "hopper.jpg")
    Image.open(GRACE_HOPPER).convert("RGBA").save(root / "hopper_rgba.png")
    Image.new("RGB", (120, 80), (90, 90, 90)).save(root / "blank.png")
    (root / "broken.jpg").write_bytes(Path(GRACE_HOPPER).read_bytes()[:3000])
    (root / "notes.txt").write_text("not a photo, and not picked up from a folder")
    return root


def test_predict_json_schema_and_carrying_on_past_bad_files(photos):
    result = runner.invoke(app, ["predict", str(photos), "--json"])
    assert result.exit_code == 1  # broken.jpg could not be read
    records = {json.loads(line)["file"]: json.loads(line) for line in result.stdout.splitlines()}
    assert set(records) == {
        str(photos / n) for n in ("blank.png", "broken.jpg", "hopper_rgba.png", "people/hopper.jpg")
    }
    assert "corrupt or truncated" in records[str(photos / "broken.jpg")]["error"]
    assert records[str(photos / "blank.png")]["faces"] == []
    for name in ("people/hopper.jpg", "hopper_rgba.png"):
        (face,) = records[str(photos / name)]["faces"]
        assert set(face) >= {"box", "label", "scores"}
        x1, y1, x2, y2 = face["box"]
        assert all(isinstance(v, int) for v in face["box"]) and 0 <= x1 < x2 <= 512 and 0 <= y1 < y2 <= 600
        assert list(face["scores"]) == CLASSES and face["label"] in CLASSES
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-3)
        assert face["label"] == max(face["scores"], key=face["scores"].get)
    assert "broken.jpg: corrupt or truncated" in words(result.stderr)
    assert "blank.png: no faces found" in words(result.stderr)
    assert "1 of 4 files could not be read" in words(result.stderr)


def test_predict_csv_and_annotated_copies(photos, tmp_path):
    out, table = tmp_path / "annotated", tmp_path / "faces.csv"
    result = runner.invoke(app, ["predict", str(photos / "people"), "--csv", str(table), "--annotate", str(out)])
    assert result.exit_code == 0, result.output
    assert "hopper.jpg:" in words(result.stdout)
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 1 and rows[0]["label"] in CLASSES and set(CLASSES) <= set(rows[0])
    (copy,) = out.rglob("*.jpg")
    annotated, original = np.asarray(Image.open(copy)), np.asarray(Image.open(GRACE_HOPPER))
    assert annotated.shape == original.shape and np.abs(annotated.astype(int) - original).max() > 100  # a box drawn


def test_predict_one_missing_file_fails_clearly(tmp_path):
    result = runner.invoke(app, ["predict", str(tmp_path / "nope.jpg")])
    assert result.exit_code == 1
    assert "nope.jpg: no such file" in words(result.stderr)


def test_predict_split_without_a_cloud_is_refused(photos):
    result = runner.invoke(app, ["predict", str(photos / "people"), "--strategy", "split"])
    assert result.exit_code == 2
    assert "needs --cloud" in words(result.output)


def _clip(path, frames=12, size=(320, 240)):
    """A synthetic clip: Grace Hopper's face moving across a gray background."""
    face = cv2.resize(cv2.imread(str(GRACE_HOPPER))[80:360, 150:380], (115, 140))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, size)
    for i in range(frames):
        frame = np.full((size[1], size[0], 3), 100, np.uint8)
        frame[50:190, 20 + 10 * i : 135 + 10 * i] = face
        writer.write(frame)
    writer.release()


def test_video_annotates_every_frame_and_writes_per_frame_rows(tmp_path):
    clip, out, table = tmp_path / "clip.mp4", tmp_path / "out.mp4", tmp_path / "frames.csv"
    _clip(clip)
    result = runner.invoke(app, ["video", str(clip), "--out", str(out), "--csv", str(table), "--every", "3"])
    assert result.exit_code == 0, result.output
    assert "12 frames" in words(result.stdout) and "FPS end to end" in words(result.stdout)
    rows = list(csv.DictReader(table.open()))
    assert [int(r["frame"]) for r in rows] == list(range(12))  # one face per frame, held between detections
    assert all(r["label"] in CLASSES for r in rows)
    assert int(rows[0]["x1"]) < int(rows[-1]["x1"])  # the box follows the face
    written = cv2.VideoCapture(str(out))
    assert int(written.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    written.release()


def test_video_needs_exactly_one_source(tmp_path):
    assert runner.invoke(app, ["video"]).exit_code == 2
    result = runner.invoke(app, ["video", str(tmp_path / "missing.mp4")])
    assert result.exit_code == 2 and "no such file" in words(result.output)


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path):
    # the shipped model stands in for the cloud's larger one, so that the escalate row is there too
    args = ["demo", "--out", str(tmp_path), "--repeats", "2", "--large", "default", "--escalate-rate", "1"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "astronaut.jpg: 1 face(s)" in out and "grace_hopper.jpg: 1 face(s)" in out
    rows = [line.split() for line in out.splitlines()]
    table = {r[0]: r for r in rows if len(r) >= 8 and r[0] in STRATEGIES and r[1].isdigit()}
    assert set(table) == set(STRATEGIES)
    assert table["edge"][6:8] == ["0", "0"]  # nothing sent
    assert int(table["split"][6]) > int(table["cloud"][6]) > 0  # the feature map is bigger than the face
    assert table["escalate"][8] == f"({table['escalate'][1]}"  # at rate 1 every face is escalated
    assert "fell back" not in out and "cloud server stopped" in out
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["astronaut_annotated.png", "grace_hopper_annotated.png"]


def test_predict_with_the_cloud_split_auto_and_escalate(photos):
    from edgefer.loading import load_model
    from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

    local = runner.invoke(app, ["predict", str(photos / "people"), "--json"])
    model = load_model("default")  # also the "larger" model here, so that every answer must agree
    with BackgroundServer(create_app(DataPlane(served_models(model, large=model), max_delay_ms=0))) as srv:
        for strategy, extra in (("split", []), ("auto", []), ("escalate", ["--escalate-rate", "1"])):
            args = ["predict", str(photos / "people"), "--json", "--strategy", strategy, "--cloud", srv.url, *extra]
            result = runner.invoke(app, args)
            assert result.exit_code == 0, result.output
            face = json.loads(result.stdout)["faces"][0]
            assert face["label"] == json.loads(local.stdout)["faces"][0]["label"]
            assert face.get("escalated", False) == (strategy == "escalate") and "fallback" not in face
