"""Training on synthetic data: the loss falls, checkpoints reload exactly, resume continues."""

import copy
import csv
import dataclasses
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from conftest import synthetic_faces, tiny_fer2013_csv, words
from edgefer.cli.main import app
from edgefer.data import FER2013_CLASSES, FaceData, Preprocess, resize_once
from edgefer.train import (
    RECIPES,
    CheckpointError,
    RunExists,
    TrainSet,
    evaluate,
    load_checkpoint,
    predict_logits,
    saved_place,
    train,
)
from edgefer.train.engine import BatchMaker, train_one_epoch

# A small, fast stand-in for the real recipe: 48 px (Stage2 is 6 x 6, so SFP uses 2 haar levels).
RECIPE = dataclasses.replace(
    RECIPES["cpu"], input_size=48, epochs=2, batch_size=32, lr=0.05, schedule="constant", label_smoothing=0.0
)
OVERRIDES = {"wavelet": "haar", "levels": (1, 2)}
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    return synthetic_faces(320, seed=0), synthetic_faces(96, seed=1)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    best = train("shufflenet_asp_sfp", *data, out, recipe=RECIPE, overrides=OVERRIDES, seed=0)
    return out, best


def _train(data, out, **kwargs):
    return train(
        "shufflenet_asp_sfp", *data, out, recipe=kwargs.pop("recipe", RECIPE), overrides=OVERRIDES, seed=0, **kwargs
    )


def _assert_same_weights(a, b):
    weights = load_file(a / "model.safetensors")
    for key, value in load_file(b / "model.safetensors").items():
        torch.testing.assert_close(weights[key], value, rtol=1e-5, atol=1e-6)


def _log(out):
    with (out / "log.csv").open() as f:
        return list(csv.DictReader(f))


def test_two_epochs_lower_the_loss_and_write_checkpoints(run):
    out, best = run
    rows = _log(out)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert b"\r" not in (out / "log.csv").read_bytes()  # one line end, the header's, on every row
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    for folder in ("best", "last"):
        assert (out / folder / "model.safetensors").is_file() and (out / folder / "model.json").is_file()
    meta = json.loads((out / "last" / "model.json").read_text())
    assert meta["build"] == {"name": "shufflenet_asp_sfp", "num_classes": 7, "wavelet": "haar", "levels": [1, 2]}
    assert meta["classes"] == list(FER2013_CLASSES) and meta["preprocess"]["size"] == 48
    assert meta["recipe"]["name"] == "cpu" and meta["data"]["train"] == "synthetic-0" and meta["seed"] == 0
    assert meta["metrics"]["epoch"] == 2 and 0 <= meta["metrics"]["accuracy"] <= 1
    assert best["accuracy"] == pytest.approx(max(float(r["val_acc"]) for r in rows), abs=1e-4)


def test_bf16_autocast_trains_in_mixed_precision_and_keeps_float32_weights(run, data, tmp_path):
    best = _train(data, tmp_path / "bf16", autocast=torch.bfloat16)
    rows = _log(tmp_path / "bf16")
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"]) and best["accuracy"] >= 0
    weights = load_file(tmp_path / "bf16" / "last" / "model.safetensors")
    assert {w.dtype for w in weights.values() if w.is_floating_point()} == {torch.float32}
    assert json.loads((tmp_path / "bf16" / "last" / "model.json").read_text())["autocast"] == "bfloat16"
    fp32 = load_file(run[0] / "last" / "model.safetensors")  # same seed and data: only the precision differs
    assert not all(torch.equal(fp32[k], weights[k]) for k in weights)


def test_predictions_under_bf16_autocast_are_float32_and_near_float32_ones(run, data):
    model, meta = load_checkpoint(run[0] / "last")
    pre = Preprocess(**meta["preprocess"])
    images = resize_once(data[1].images, pre.resize)
    full = predict_logits(model, images, pre, tta="flip")
    half = predict_logits(model, images, pre, tta="flip", autocast=torch.bfloat16)
    assert half.dtype == torch.float32 and not torch.equal(full, half)
    torch.testing.assert_close(half.exp(), full.exp(), atol=0.05, rtol=0)


def test_checkpoint_reloads_with_identical_predictions(run, data):
    out, _ = run
    model, meta = load_checkpoint(out / "last")
    pre = Preprocess(**meta["preprocess"])
    images = resize_once(data[1].images, pre.resize)
    reloaded = predict_logits(model, images, pre, tta="flip")
    state = load_file(out / "last" / "model.safetensors")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    report = evaluate(model, data[1], pre, tta="flip")
    assert report["accuracy"] == float((reloaded.argmax(1).numpy() == data[1].labels).mean())


def test_resume_continues_from_the_saved_epoch_and_matches_an_uninterrupted_run(data, run, tmp_path):
    out, _ = run
    _train(data, tmp_path, recipe=dataclasses.replace(RECIPE, epochs=1))
    assert [r["epoch"] for r in _log(tmp_path)] == ["1"]
    _train(data, tmp_path, resume=True)
    assert [r["epoch"] for r in _log(tmp_path)] == ["1", "2"]
    _assert_same_weights(tmp_path / "last", out / "last")


def test_training_into_a_folder_that_holds_a_run_is_refused_and_the_run_is_kept(data, run, tmp_path):
    out, _ = run
    shutil.copytree(out, tmp_path / "run")
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert saved_place(tmp_path / "run") == (2, 0) and saved_place(tmp_path / "empty") is None
    with pytest.raises(RunExists) as refused:  # a CheckpointError that says where the run stopped
        _train(data, tmp_path / "run")
    assert refused.value.place == (2, 0) and isinstance(refused.value, CheckpointError)
    assert {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()} == before


def test_a_run_whose_training_state_was_lost_continues_with_the_generator_it_would_have_had(
    data, tmp_path, monkeypatch
):
    """scripts/continue_gpu_run.py: a GPU run comes back as weights and a log; the data order it writes
    for the next epoch must be the one the engine's own resume state holds."""
    spec = importlib.util.spec_from_file_location("continue_gpu_run", ROOT / "scripts" / "continue_gpu_run.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _train(data, tmp_path / "whole", recipe=dataclasses.replace(RECIPE, epochs=1))
    came_back = tmp_path / "gpu"
    shutil.copytree(tmp_path / "whole", came_back, ignore=shutil.ignore_patterns("train_state.pt", "best"))
    out = tmp_path / "continued"
    argv = ["continue_gpu_run.py", str(came_back), str(out), "--seed", "0", "--train-size", str(len(data[0]))]
    monkeypatch.setattr(sys, "argv", argv)
    script.main()
    state = torch.load(out / "last" / "train_state.pt", weights_only=False)
    engines = torch.load(tmp_path / "whole" / "last" / "train_state.pt", weights_only=False)
    assert state["epoch"] == engines["epoch"] == 1
    assert torch.equal(state["generator"], engines["generator"])
    assert state["optimizer"]["state"] == {}  # fresh momentum: the one thing a continued run does not have
    _train(data, out, resume=True)
    assert [r["epoch"] for r in _log(out)] == ["1", "2"]
    with pytest.raises(SystemExit) as refused:  # a folder that holds a run is left alone
        script.main()
    assert refused.value.code == 2


def test_batches_made_ahead_by_worker_processes_train_the_same_model(data, run, tmp_path):
    out, _ = run
    _train(data, tmp_path, workers=2)  # each step's augmentation has its own seed, so workers don't change it
    _assert_same_weights(tmp_path / "last", out / "last")


def test_the_strong_recipes_augmentation_is_the_same_in_worker_processes(data, tmp_path):
    strong = dataclasses.replace(RECIPES["strong"], input_size=48, epochs=1, batch_size=32, votes_weight=0.0)
    _train(data, tmp_path / "inline", recipe=strong)
    _train(data, tmp_path / "workers", recipe=strong, workers=2)
    _assert_same_weights(tmp_path / "workers" / "last", tmp_path / "inline" / "last")


class _Killed(BaseException):
    """Stands in for SIGKILL: nothing in the engine catches it."""


@pytest.mark.parametrize("killed_at, saved_step", [(7, 4), (3, None)])
def test_a_run_killed_mid_epoch_resumes_from_its_partial_save_and_matches_an_uninterrupted_run(
    data, run, tmp_path, killed_at, saved_step
):
    out, _ = run
    now = [0.0]

    def step_a_minute_and_kill(epoch, step, steps, loss):
        now[0] += 60  # the clock moves a minute a step: a save every 4 steps since the last save or epoch end
        if (epoch, step + 1) == (1, killed_at):
            raise _Killed  # in epoch 2, like SIGKILL: no chance to save

    with pytest.raises(_Killed):
        _train(data, tmp_path, on_batch=step_a_minute_and_kill, save_every=240, clock=lambda: now[0])
    assert [r["epoch"] for r in _log(tmp_path)] == ["1"]
    if saved_step is None:
        assert not (tmp_path / "partial").exists()  # epoch 1's partial went at its end; resume from last/
    else:
        state = torch.load(tmp_path / "partial" / "train_state.pt", weights_only=False)
        assert (state["epoch"], state["progress"]["step"]) == (1, saved_step)
    _train(data, tmp_path, resume=True)
    assert [r["epoch"] for r in _log(tmp_path)] == ["1", "2"]
    assert not (tmp_path / "partial").exists()  # an epoch's end makes it stale, so it goes
    _assert_same_weights(tmp_path / "last", out / "last")


def test_a_stop_request_saves_the_place_and_resume_matches_an_uninterrupted_run(data, run, tmp_path):
    from edgefer.train import TrainingInterrupted

    out, _ = run
    steps = iter(range(100))
    with pytest.raises(TrainingInterrupted) as stopped:
        _train(data, tmp_path, should_stop=lambda: next(steps) == 2)  # asked after the third step
    assert (stopped.value.epoch, stopped.value.step) == (0, 3) and stopped.value.folder == tmp_path / "partial"
    assert not (tmp_path / "last").exists()  # stopped inside the first epoch: partial is all there is
    _train(data, tmp_path, resume=True)
    _assert_same_weights(tmp_path / "last", out / "last")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        _train(data, tmp_path / "empty", resume=True)


def test_sigterm_raises_the_stop_flag_instead_of_killing_and_the_old_handler_returns():
    import os
    import signal

    from edgefer.cli.train import stop_requested

    before = signal.getsignal(signal.SIGTERM)
    with stop_requested() as should_stop:
        assert not should_stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert should_stop()
    assert signal.getsignal(signal.SIGTERM) is before


def test_finetune_gets_a_new_head_and_keeps_the_backbone(run, data, tmp_path):
    out, _ = run
    two_classes = FaceData(data[0].images[:64], data[0].labels[:64] % 2, ("a", "b"), "binary")
    recipe = dataclasses.replace(RECIPES["finetune"], epochs=1, batch_size=32)
    train("ignored", two_classes, two_classes, tmp_path, recipe=recipe, init=out / "last")
    model, meta = load_checkpoint(tmp_path / "last")
    assert model.fc.out_features == 2 and meta["classes"] == ["a", "b"] and meta["init"] == str(out / "last")
    assert meta["recipe"]["lr"] == 0.001 and meta["recipe"]["schedule"] == "constant"
    assert meta["preprocess"]["size"] == 48  # the base checkpoint's input size


def test_init_from_a_one_member_ensemble_trains_its_network(run, data, tmp_path):
    """--init default-large: the cloud's model is one network stored as a mirrored ensemble; a run starts from
    that network (the mirror is TTA, not weights). An ensemble of two has no one network to start from."""
    from edgefer.loading import make_ensemble, save_checkpoint

    out, _ = run
    member, meta = load_checkpoint(out / "last")
    save_checkpoint(tmp_path / "one", make_ensemble([member], [48], mirror=True), meta)
    frozen = dataclasses.replace(RECIPE, epochs=1, lr=0.0, weight_decay=0.0)  # no step moves a weight
    train("ignored", *data, tmp_path / "run", recipe=frozen, init=tmp_path / "one", new_head=False)
    model, meta = load_checkpoint(tmp_path / "run" / "last")
    assert meta["build"]["name"] == "shufflenet_asp_sfp"  # the network, not an ensemble of it
    for (name, value), (_, before) in zip(model.named_parameters(), member.named_parameters(), strict=True):
        torch.testing.assert_close(value, before, msg=name)
    save_checkpoint(tmp_path / "two", make_ensemble([member, copy.deepcopy(member)], [48, 48]), meta)
    with pytest.raises(ValueError, match="ensemble of 2"):
        train("ignored", *data, tmp_path / "run2", recipe=frozen, init=tmp_path / "two", new_head=False)


def test_evaluate_cli_reports_json_and_plots(run, data, tmp_path):
    out, _ = run
    test = data[1]
    for cls in range(7):  # write the validation set as class folders
        folder = tmp_path / "faces" / FER2013_CLASSES[cls]
        folder.mkdir(parents=True)
        for i in np.flatnonzero(test.labels == cls):
            from PIL import Image

            Image.fromarray(test.images[i]).save(folder / f"{i}.png")
    args = ["evaluate", "--checkpoint", str(out / "last"), "--data", str(tmp_path / "faces")]
    result = CliRunner().invoke(app, [*args, "--json", "--plot", str(tmp_path / "cm.png")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"accuracy", "macro_f1", "per_class", "n", "confusion"} <= set(report)
    assert report["n"] == len(test) and 0 <= report["accuracy"] <= 1
    assert sum(map(sum, report["confusion"])) == len(test)
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = CliRunner().invoke(app, args)
    assert text.exit_code == 0 and "accuracy" in text.output and "macro-F1" in text.output


def test_crossval_folds_are_subject_disjoint_and_scored_by_the_last_epoch(run, data, tmp_path):
    from edgefer.train.crossval import cross_validate

    faces = data[1]
    faces = dataclasses.replace(faces, subjects=np.arange(len(faces)) % 6)  # 6 subjects
    recipe = dataclasses.replace(RECIPES["finetune"], epochs=1, batch_size=16)
    summary = cross_validate(faces, tmp_path, recipe=recipe, init=run[0] / "last", folds=3)
    assert [f["fold"] for f in summary["folds"]] == [1, 2, 3]
    assert sum(f["n"] for f in summary["folds"]) == len(faces)
    for fold in summary["folds"]:
        last = json.loads((tmp_path / f"fold{fold['fold'] - 1:02d}" / "last" / "model.json").read_text())
        assert fold["accuracy"] == last["metrics"]["accuracy"]
    assert summary["mean_accuracy"] == pytest.approx(np.mean([f["accuracy"] for f in summary["folds"]]))
    assert json.loads((tmp_path / "crossval.json").read_text())["std_accuracy"] == summary["std_accuracy"]
    # --resume: finished folds are kept, unfinished ones continue from their last epoch
    longer = dataclasses.replace(recipe, epochs=2)
    resumed = cross_validate(faces, tmp_path, recipe=longer, init=run[0] / "last", folds=3, resume=True)
    assert [r["epoch"] for r in _log(tmp_path / "fold00")] == ["1", "2"]
    stamp = (tmp_path / "fold02" / "log.csv").stat().st_mtime_ns
    again = cross_validate(faces, tmp_path, recipe=longer, init=run[0] / "last", folds=3, resume=True)
    assert again["folds"] == resumed["folds"] and (tmp_path / "fold02" / "log.csv").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="needs subject ids"):
        cross_validate(data[1], tmp_path, recipe=recipe, folds=3)


def test_corrupt_or_mismatched_checkpoints_are_refused(run, tmp_path):
    out, _ = run
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        load_checkpoint(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "model.json").write_text((out / "last" / "model.json").read_text())
    (broken / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable weights"):
        load_checkpoint(broken)
    meta = json.loads((out / "last" / "model.json").read_text())
    meta["build"]["name"] = "shufflenet"  # weights carry attention, the model would not
    (broken / "model.json").write_text(json.dumps(meta))
    (broken / "model.safetensors").write_bytes((out / "last" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(broken)


def test_train_cli_on_a_tiny_fer2013_csv_with_resume(tmp_path):
    csv_path = tiny_fer2013_csv(tmp_path)
    out = tmp_path / "run"
    args = ["train", "shufflenet", "--data", str(csv_path), "--out", str(out), "--input-size", "48", "--threads", "1"]
    first = CliRunner().invoke(app, [*args, "--epochs", "1"])
    assert first.exit_code == 0, first.output
    assert "best: epoch 1" in words(first.output)
    log = (out / "log.csv").read_bytes()
    over = CliRunner().invoke(app, [*args, "--epochs", "2"])  # neither --resume nor --auto-resume: refused
    assert over.exit_code == 2 and (out / "log.csv").read_bytes() == log
    resumed = CliRunner().invoke(app, [*args, "--epochs", "2", "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert [r["epoch"] for r in _log(out)] == ["1", "2"]
    again = CliRunner().invoke(app, [*args, "--epochs", "2", "--auto-resume"])  # finished: nothing left to do
    assert again.exit_code == 0, again.output
    assert [r["epoch"] for r in _log(out)] == ["1", "2"]
    fresh = CliRunner().invoke(app, [*args[:5], str(tmp_path / "new"), *args[6:], "--epochs", "1", "--auto-resume"])
    assert fresh.exit_code == 0, fresh.output
    assert [r["epoch"] for r in _log(tmp_path / "new")] == ["1"]
    meta = json.loads((out / "last" / "model.json").read_text())
    assert meta["metrics"]["epoch"] == 2 and meta["data"]["train"].endswith("fer2013.csv:Training")


def test_train_cli_fine_tunes_at_the_checkpoints_size_unless_input_size_is_given(tmp_path):
    """A fine-tune keeps its checkpoint's input size and normalisation; --input-size trains it at another size."""
    csv_path = tiny_fer2013_csv(tmp_path)
    base = ["train", "shufflenet", "--data", str(csv_path), "--epochs", "1", "--threads", "1"]
    first = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "base"), "--input-size", "48"])
    assert first.exit_code == 0, first.output
    init = ["--recipe", "finetune", "--init", str(tmp_path / "base" / "last"), "--keep-head"]
    for name, size in (("kept", []), ("larger", ["--input-size", "64"])):
        result = CliRunner().invoke(app, [*base, *init, *size, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    pre = {n: json.loads((tmp_path / n / "last" / "model.json").read_text())["preprocess"] for n in ("base", "kept")}
    larger = json.loads((tmp_path / "larger" / "last" / "model.json").read_text())
    assert pre["kept"] == pre["base"] and pre["base"]["size"] == 48
    assert larger["preprocess"] == {**pre["base"], "size": 64} and larger["recipe"]["input_size"] == 64


def test_train_cli_votes_weight_overrides_the_recipe_and_needs_the_votes(tmp_path):
    csv_path = tiny_fer2013_csv(tmp_path)  # 140 Training rows, then 20 PublicTest
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [f"{'Training' if i < 140 else 'PublicTest'},fer{i}.png,2,5,1,0,0,0,0,0,0,0" for i in range(160)]
    (tmp_path / "new.csv").write_text("\n".join([header, *rows]) + "\n")
    out = tmp_path / "run"
    args = ["train", "shufflenet", "--data", str(csv_path), "--out", str(out), "--input-size", "48", "--epochs", "1"]
    refused = CliRunner().invoke(app, [*args, "--votes-weight", "0.5"])
    assert refused.exit_code == 2 and not out.exists()
    result = CliRunner().invoke(app, [*args, "--votes-weight", "0.5", "--ferplus", str(tmp_path / "new.csv")])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "last" / "model.json").read_text())
    assert meta["recipe"]["name"] == "cpu" and meta["recipe"]["votes_weight"] == 0.5
    assert meta["data"]["note"].startswith("FER+ votes from")


def test_reframe_recipe_keeps_the_head_and_records_its_jitter(run, tmp_path):
    base, _ = run
    csv_path = tiny_fer2013_csv(tmp_path)
    out = tmp_path / "reframe"
    args = ["train", "shufflenet_asp_sfp", "--data", str(csv_path), "--out", str(out), "--threads", "1"]
    result = CliRunner().invoke(
        app,
        [*args, "--recipe", "reframe", "--init", str(base / "last"), "--keep-head", "--epochs", "1", "--lr", "0.003"],
    )
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "last" / "model.json").read_text())
    assert meta["recipe"]["lr"] == 0.003  # --lr overrides the recipe's 0.01
    assert meta["recipe"]["jitter"] == {"scale": 0.2, "shift": 0.08, "degrees": 10.0}
    assert meta["preprocess"] == json.loads((base / "last" / "model.json").read_text())["preprocess"]
    before, after = load_file(base / "last" / "model.safetensors"), load_file(out / "last" / "model.safetensors")
    change = (after["fc.weight"] - before["fc.weight"]).norm() / before["fc.weight"].norm()
    assert 0 < change < 0.1  # fine-tuned, not replaced by a fresh head

    refused = CliRunner().invoke(app, [*args, "--recipe", "reframe", "--init", str(base / "last"), "--lr", "0"])
    assert refused.exit_code == 2
    refused = CliRunner().invoke(app, [*args, "--recipe", "reframe", "--keep-head"])
    assert refused.exit_code != 0 and "--keep-head needs --init" in words(refused.output)


class _Spy(torch.nn.Module):
    """Records the mean of every input image; its logits come from one weight, so it can train."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(7))
        self.seen: list[torch.Tensor] = []

    def forward(self, x):
        self.seen.append(x.mean((1, 2, 3)).detach())
        return self.weight.expand(len(x), -1)


class _Pids(BatchMaker):
    """Answers each step with the process that made it."""

    def __getitem__(self, key):
        return os.getpid()


def test_batch_workers_are_forked_once_for_the_run_and_stop_with_it():
    n, pre = 64, Preprocess(size=48, mean=0.5, std=0.5)
    labels = torch.zeros(n, dtype=torch.long)
    train_set = TrainSet(torch.zeros(n, 1, 55, 55, dtype=torch.uint8), labels, torch.ones(n, 7) / 7)
    keys = [(np.arange(8), np.zeros(8, dtype=np.int64), step) for step in range(6)]
    with _Pids(train_set, pre, RECIPE, workers=2) as maker:
        first, second = list(maker(keys)), list(maker(keys[:3]))  # two epochs
        assert len(first) == 6 and len(second) == 3
        assert set(second) <= set(first) and os.getpid() not in first and len(set(first)) <= 2
    for pid in set(first):
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # shut down and reaped
    inline = list(_Pids(train_set, pre, RECIPE)(keys))
    assert inline == [os.getpid()] * 6
    other = BatchMaker(train_set, pre, dataclasses.replace(RECIPE, batch_size=16))
    model = torch.nn.Linear(1, 1)
    with pytest.raises(ValueError, match="this data"):
        train_one_epoch(model, train_set, pre, torch.optim.SGD(model.parameters()), RECIPE, 0, torch.Generator(),
                        batches=other)  # fmt: skip


def test_with_several_views_each_face_is_shown_once_in_a_random_view():
    n, pre = 256, Preprocess(size=48, mean=0.5, std=0.5)
    views = torch.stack(
        [torch.zeros(n, 1, 55, 55, dtype=torch.uint8), torch.full((n, 1, 55, 55), 255, dtype=torch.uint8)]
    )
    spy = _Spy()
    recipe = dataclasses.replace(RECIPE, batch_size=32, schedule="constant")
    optimizer = torch.optim.SGD(spy.parameters(), lr=0.1)
    labels = torch.zeros(n, dtype=torch.long)
    train_set = TrainSet(views, labels, torch.nn.functional.one_hot(labels, 7).float())
    train_one_epoch(spy, train_set, pre, optimizer, recipe, 0, torch.Generator().manual_seed(0))
    seen = torch.cat(spy.seen)
    assert len(seen) == n  # one pass: every face once
    bright = int((seen > 0).sum())  # view 1 normalises to +1, view 0 to -1
    assert set(seen.round().tolist()) == {-1.0, 1.0} and 96 < bright < 160


def test_pipeline_views_keep_missed_faces_and_are_cached(tmp_path, monkeypatch):
    import edgefer.faces
    from edgefer.faces.synthetic import pipeline_views

    faces = synthetic_faces(6, seed=5).images
    calls = []

    def blind_detector(name, threads):  # finds no face, so every face keeps its own crop
        assert name == "retinaface"
        return lambda image: calls.append(image.shape) or []

    monkeypatch.setattr(edgefer.faces, "get_detector", blind_detector)
    cache = tmp_path / "views.npz"
    views = pipeline_views(faces, cache)
    assert len(calls) == 2 * len(faces)  # each face pasted once per background
    assert len(views) == 2 and cache.is_file()
    for view in views:
        np.testing.assert_array_equal(view, faces)

    def no_detector(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(edgefer.faces, "get_detector", no_detector)
    for view in pipeline_views(faces, cache):
        np.testing.assert_array_equal(view, faces)
    with pytest.raises(AssertionError, match="cache"):  # another set of faces is not in the cache
        pipeline_views(faces[:3], cache)


@pytest.mark.slow
def test_pipeline_recipe_trains_on_cached_detector_views(run, tmp_path):
    base, _ = run
    out = tmp_path / "pipeline"
    args = ["train", "shufflenet_asp_sfp", "--data", str(tiny_fer2013_csv(tmp_path)), "--out", str(out)]
    result = CliRunner().invoke(
        app,
        [*args, "--threads", "1", "--recipe", "pipeline", "--init", str(base / "last"), "--keep-head", "--epochs", "1"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "last" / "model.json").read_text())["recipe"]["pipeline_views"] is True
    with np.load(out / "pipeline_views.npz") as views:
        assert sorted(views.files) == ["noise", "replicate"] and views["noise"].shape == (140, 48, 48)
