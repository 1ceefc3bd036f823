"""The ingredients of the strong and distill recipes: photometric effects, erasing, soft targets,
logit adjustment, MixUp/CutMix, distillation, ten-crop TTA, and training under torchrun."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import synthetic_faces, tiny_fer2013_csv
from edgefer.data import Erasing, Photometric, Preprocess, erase, photometric, resize_once, tta_views
from edgefer.loading import make_ensemble
from edgefer.train import RECIPES, evaluate, train
from edgefer.train.distill import Teacher, distillation_loss
from edgefer.train.mixing import Mixing, mix, mix_targets
from edgefer.train.targets import log_prior, soft_cross_entropy, soft_targets
from test_train import OVERRIDES, RECIPE


def _batch(n=64, side=48, seed=0):
    return torch.randint(40, 200, (n, 1, side, side), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_photometric_is_a_no_op_by_default_and_changes_every_image_when_always_on():
    batch = _batch()
    assert photometric(batch, Photometric()) is batch
    for effect in ("gamma_p", "contrast_p", "blur_p", "jpeg_p", "noise_p"):
        out = photometric(batch, Photometric(**{effect: 1.0}), torch.Generator().manual_seed(1))
        assert out.dtype == torch.uint8 and out.shape == batch.shape
        changed = (out.int() - batch.int()).abs().flatten(1).amax(1) > 0
        assert changed.float().mean() > 0.9, effect  # (a gamma near 1 may leave an image as it was)
    again = photometric(batch, Photometric.real_photos(), torch.Generator().manual_seed(2))
    np.testing.assert_array_equal(
        again, photometric(batch, Photometric.real_photos(), torch.Generator().manual_seed(2))
    )


def test_blur_lowers_and_noise_raises_the_high_frequencies():
    batch = _batch()

    def roughness(x):
        return x.float().diff(dim=-1).abs().mean().item()

    assert roughness(photometric(batch, Photometric(blur_p=1.0), torch.Generator().manual_seed(0))) < roughness(batch)
    smooth = torch.full_like(batch, 128)
    assert roughness(photometric(smooth, Photometric(noise_p=1.0), torch.Generator().manual_seed(0))) > 1


def test_erasing_replaces_one_rectangle_per_chosen_image_within_the_area_bounds():
    batch = torch.full((200, 1, 40, 40), 7, dtype=torch.uint8)
    out = erase(batch, Erasing(p=0.5, area=(0.05, 0.2)), torch.Generator().manual_seed(0))
    changed = out != 7
    hit = changed.flatten(1).any(1)
    assert 70 < int(hit.sum()) < 130  # about half the images
    for mask in changed[hit, 0]:
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert 0.04 * 1600 <= box <= 0.21 * 1600  # one rectangle of the asked size (grey 7 drawn rarely)


def test_soft_targets_blend_votes_keep_one_hot_without_votes_and_sum_to_one():
    labels = np.array([0, 1, 2])
    votes = np.array([[0, 10, 0], [0, 0, 0], [5, 0, 5]])
    t = soft_targets(labels, 3, votes=votes, votes_weight=0.5, smoothing=0.3)
    torch.testing.assert_close(t.sum(1), torch.ones(3))
    torch.testing.assert_close(t[0], 0.7 * torch.tensor([0.5, 0.5, 0.0]) + 0.1)
    torch.testing.assert_close(t[1], 0.7 * torch.tensor([0.0, 1.0, 0.0]) + 0.1)  # no votes: the label alone
    with pytest.raises(ValueError, match="shape"):
        soft_targets(labels, 3, votes=votes[:, :2], votes_weight=0.5)
    logits = torch.randn(3, 3)
    torch.testing.assert_close(
        soft_cross_entropy(logits, torch.eye(3)[labels]),
        torch.nn.functional.cross_entropy(logits, torch.tensor(labels)),
    )


def test_log_prior_is_the_log_of_each_class_share():
    prior = log_prior(np.array([0, 0, 0, 1]), 3)
    torch.testing.assert_close(prior.exp(), torch.tensor([0.75, 0.25, 0.25]))  # an empty class counts as one


def test_mixup_and_cutmix_mix_images_and_targets_by_the_same_weight():
    x = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    t = torch.eye(2)
    mixed, targets, lam = mix(x, t, Mixing(mixup=1.0), torch.Generator().manual_seed(0))
    assert 0 < lam < 1
    torch.testing.assert_close(mixed[0].mean(), torch.tensor(1 - lam))
    torch.testing.assert_close(targets, mix_targets(t, lam))
    cut, cut_targets, lam = mix(x, t, Mixing(cutmix=1.0), torch.Generator().manual_seed(3))
    torch.testing.assert_close(cut[0].mean(), torch.tensor(1 - lam))  # the pasted box's share of pixels
    torch.testing.assert_close(cut_targets[0], torch.tensor([lam, 1 - lam]))
    same, same_t, lam = mix(x, t, Mixing(), torch.Generator())
    assert same is x and same_t is t and lam == 1.0


def test_distillation_loss_is_the_hard_loss_at_alpha_0_and_zero_kl_when_student_matches():
    logits = torch.randn(5, 7)
    targets = torch.eye(7)[torch.arange(5)]
    probs = torch.softmax(logits / 3, 1)
    torch.testing.assert_close(
        distillation_loss(logits, targets, probs, alpha=0.0, temperature=3), soft_cross_entropy(logits, targets)
    )
    assert distillation_loss(logits, targets, probs, alpha=1.0, temperature=3).abs() < 1e-5
    assert distillation_loss(logits, targets, torch.full((5, 7), 1 / 7), alpha=1.0, temperature=3) > 0.01


def test_tta_views():
    batch = _batch(4, 55)
    pre = Preprocess(size=48, mean=0.5, std=0.25)
    assert [len(tta_views(batch, pre, t)) for t in ("none", "flip", "tencrop")] == [1, 2, 10]
    views = tta_views(batch, pre, "tencrop")
    torch.testing.assert_close(views[5], views[0].flip(-1))
    torch.testing.assert_close(views[1], batch[:, :, :48, :48])
    with pytest.raises(ValueError, match="tencrop"):
        tta_views(batch, pre, "five")


@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    data = synthetic_faces(256, seed=0), synthetic_faces(64, seed=1)
    train("shufflenet", *data, out, recipe=dataclasses.replace(RECIPE, epochs=3), seed=0)
    return out / "last", data


def test_strong_recipe_trains_with_every_ingredient_and_records_them(teacher_run, tmp_path):
    _, data = teacher_run
    recipe = dataclasses.replace(
        RECIPES["strong"],
        input_size=48,
        epochs=1,
        batch_size=32,
        logit_adjust=1.0,
        tta="tencrop",
        mixing=Mixing(mixup=0.2, cutmix=1.0, p=1.0),
    )
    votes = np.eye(7, dtype=np.int64)[data[0].labels] * 10
    best = train("shufflenet_asp_sfp", *data, tmp_path, recipe=recipe, overrides=OVERRIDES, votes=votes)
    assert 0 <= best["accuracy"] <= 1
    meta = json.loads((tmp_path / "last" / "model.json").read_text())
    assert meta["recipe"]["mixing"]["cutmix"] == 1.0 and meta["recipe"]["votes_weight"] == 0.25
    assert meta["recipe"]["photometric"]["jpeg_p"] > 0 and meta["recipe"]["tta"] == "tencrop"
    with pytest.raises(ValueError, match="votes"):
        train("shufflenet", *data, tmp_path / "x", recipe=recipe)


@pytest.mark.parametrize("mode", ["online", "fixed"])
def test_distillation_from_a_teacher_in_either_mode(teacher_run, tmp_path, mode):
    ckpt, data = teacher_run
    teacher = Teacher.load([ckpt, ckpt], data[0].classes)  # an ensemble of two copies: the same probabilities
    recipe = dataclasses.replace(
        RECIPES["distill"], input_size=48, epochs=2, batch_size=32, lr=0.05, votes_weight=0.0, teacher_mode=mode
    )
    best = train("shufflenet", *data, tmp_path, recipe=recipe, teacher=teacher)
    assert best["epoch"] >= 1
    meta = json.loads((tmp_path / "last" / "model.json").read_text())
    assert meta["teacher"] == [str(ckpt), str(ckpt)] and meta["recipe"]["teacher_mode"] == mode
    assert (tmp_path / "teacher.pt").is_file() == (mode == "fixed")
    with pytest.raises(ValueError, match="teacher"):
        train("shufflenet", *data, tmp_path / "none", recipe=recipe)
    with pytest.raises(ValueError, match="predicts"):
        Teacher.load([ckpt], ("a", "b"))


def test_fixed_teacher_targets_are_the_teachers_flip_averaged_centre_predictions(teacher_run):
    ckpt, data = teacher_run
    teacher = Teacher.load([ckpt], data[0].classes)
    probs = teacher.centre_probs(data[1].images, temperature=1.0)
    model, pre = teacher.members[0]
    expected = evaluate(model, data[1], pre, tta="flip")["accuracy"]
    assert (probs.argmax(1).numpy() == data[1].labels).mean() == pytest.approx(expected)
    x01 = resize_once(data[1].images, pre.resize)[:, :, 3:51, 3:51].float() / 255
    torch.testing.assert_close(teacher.probs(x01).sum(1), torch.ones(len(x01)))

    # a mirrored ensemble already sees the mirror image: the same targets from one pass a batch
    mirrored = make_ensemble([model], [pre.size], mirror=True).eval()
    calls = []
    mirrored.register_forward_hook(lambda *_: calls.append(1))
    once = Teacher([(mirrored, pre)]).centre_probs(data[1].images, temperature=1.0)
    torch.testing.assert_close(once, probs, rtol=1e-5, atol=1e-6)
    assert len(calls) == -(-len(data[1].images) // 256)  # one forward a batch of 256, not two


@pytest.mark.slow
def test_torchrun_with_two_processes_gives_the_parameters_of_one_process_with_two_micro_batches(tmp_path):
    csv_path = tiny_fer2013_csv(tmp_path, n=300, n_train=260)  # two steps of 128
    common = ["train", "shufflenet", "--data", str(csv_path), "--input-size", "48", "--epochs", "1", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "edgefer.cli.main", *common, "--out", str(tmp_path / "two")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run(
        [sys.executable, "-m", "edgefer.cli.main", *common, "--micro-batches", "2", "--out", str(tmp_path / "one")],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = (load_file(tmp_path / run / "last" / "model.safetensors") for run in ("one", "two"))
    learnt = [k for k in a if "running_" not in k and "num_batches" not in k]
    for key in learnt:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    first = load_file(tmp_path / "two" / "last" / "model.safetensors")
    assert any((first[k] != 0).any() for k in learnt)  # rank 0 wrote a real checkpoint
    log = (tmp_path / "two" / "log.csv").read_text().splitlines()
    assert len(log) == 2  # one header, one epoch: only rank 0 logs
