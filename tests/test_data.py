"""Dataset loaders on tiny files written by the tests, and their errors; the training augmentation."""

import gzip

import numpy as np
import pytest
import torch
from PIL import Image

from edgefer.data import (
    CKPLUS_CLASSES,
    FERPLUS_VOTE_COLUMNS,
    DatasetError,
    Jitter,
    Preprocess,
    augment,
    ferplus_votes,
    load_ckplus,
    load_fer2013,
    load_ferplus,
    load_image_folder,
    reframe,
    subject_folds,
)

rng = np.random.default_rng(0)


def _pixels(value=None):
    image = rng.integers(0, 256, 48 * 48) if value is None else np.full(48 * 48, value)
    return " ".join(map(str, image))


def _fer_csv(path, rows, header="emotion,pixels,Usage"):
    text = "\n".join([header, *(f"{e},{p},{u}" for e, p, u in rows)]) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


ROWS = [(0, _pixels(10), "Training"), (3, _pixels(20), "Training"), (6, _pixels(30), "PublicTest")]


@pytest.mark.parametrize("name", ["fer.csv", "fer.csv.gz"])
def test_fer2013_csv_plain_or_gz_gives_the_splits_present(tmp_path, name):
    splits = load_fer2013(_fer_csv(tmp_path / name, ROWS))
    assert sorted(splits) == ["PublicTest", "Training"]  # no PrivateTest rows: fine
    train = splits["Training"]
    assert train.images.shape == (2, 48, 48) and train.images.dtype == np.uint8
    assert train.labels.tolist() == [0, 3] and train.images[1, 0, 0] == 20
    assert train.classes[3] == "happy" and len(train.classes) == 7
    assert load_fer2013(tmp_path / name, splits=["PublicTest"])["PublicTest"].labels.tolist() == [6]


def test_fer2013_private_test_rows_are_accepted(tmp_path):
    splits = load_fer2013(_fer_csv(tmp_path / "f.csv", [*ROWS, (2, _pixels(), "PrivateTest")]))
    assert splits["PrivateTest"].labels.tolist() == [2]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (ROWS, "label,pixels,split", r"f\.csv:1: expected the columns emotion,pixels,Usage, found label,pixels,split"),
        ([*ROWS, (1, "1 2 3", "Training")], None, r"f\.csv:5: expected 2304 pixels, found 3"),
        ([(1, _pixels()[:-3] + " x7", "Training")], None, r"f\.csv:2: pixels are not space-separated integers"),
        ([(1, "300 " + _pixels()[4:], "Training")], None, r"f\.csv:2: pixel values must be 0-255"),
        ([(9, _pixels(), "Training")], None, r"f\.csv:2: emotion '9' is not a class index"),
        ([(1, _pixels(), "Validation")], None, r"f\.csv:2: unknown Usage 'Validation'"),
    ],
)
def test_fer2013_bad_files_name_the_file_and_line(tmp_path, rows, header, message):
    path = _fer_csv(tmp_path / "f.csv", rows, header or "emotion,pixels,Usage")
    with pytest.raises(DatasetError, match=message):
        load_fer2013(path)


def test_missing_file_and_missing_split_are_clear(tmp_path):
    with pytest.raises(DatasetError, match="no such file"):
        load_fer2013(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match=r"no rows for split\(s\) \['PrivateTest'\]"):
        load_fer2013(_fer_csv(tmp_path / "f.csv", ROWS), splits=["PrivateTest"])


def _write_images(folder, names, size=48, mode="L"):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size, size, 3) if mode == "RGB" else (size, size), dtype=np.uint8)).save(
            folder / name
        )


def test_fer2013_kaggle_image_folders(tmp_path):
    _write_images(tmp_path / "train" / "happy", ["a.png", "b.jpg"])
    _write_images(tmp_path / "train" / "angry", ["c.png"])
    _write_images(tmp_path / "test" / "neutral", ["d.png"])
    splits = load_fer2013(tmp_path)
    assert sorted(splits) == ["test", "train"]
    assert sorted(splits["train"].labels.tolist()) == [0, 3, 3] and splits["test"].labels.tolist() == [6]


def test_image_folder_with_explicit_mapping_and_colour_to_gray(tmp_path):
    _write_images(tmp_path / "joy", ["1.png"], mode="RGB")
    _write_images(tmp_path / "calm", ["2.png", "3.png"], size=60)
    data = load_image_folder(tmp_path, {"calm": 0, "joy": 1}, size=48)
    assert data.images.shape == (3, 48, 48) and data.classes == ("calm", "joy")
    assert data.labels.tolist() == [0, 0, 1]
    with pytest.raises(DatasetError, match=r"class folder\(s\) \['joy'\] are not in the class mapping"):
        load_image_folder(tmp_path, ["calm"])
    with pytest.raises(DatasetError, match="differs from"):
        load_image_folder(tmp_path, ["calm", "joy"])


def test_unreadable_image_names_the_file(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"broken\.png: not a readable image"):
        load_image_folder(tmp_path, ["happy"])


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def test_ferplus_majority_votes_and_drop_rules(tmp_path):
    fer = _fer_csv(
        tmp_path / "fer.csv", [(0, _pixels(i), "Training") for i in range(5)] + [(1, _pixels(), "PublicTest")]
    )
    votes = [
        "Training,fer0.png,0,8,1,0,0,0,0,1,0,0",  # happiness, strict majority: kept
        "Training,fer1.png,5,5,0,0,0,0,0,0,0,0",  # tie, no strict majority: dropped
        "Training,fer2.png,0,0,0,0,0,0,0,0,7,3",  # top is unknown: dropped
        "Training,fer3.png,1,0,0,0,0,0,0,0,0,9",  # top is NF (not a face): dropped
        "Training,fer4.png,0,0,0,0,0,0,0,6,4,0",  # contempt 6 of 10: kept
        "PublicTest,fer5.png,10,0,0,0,0,0,0,0,0,0",
    ]
    (tmp_path / "new.csv").write_text("\n".join([FERPLUS_HEADER, *votes]) + "\n")
    splits = load_ferplus(fer, tmp_path / "new.csv")
    train = splits["Training"]
    assert train.labels.tolist() == [1, 7] and train.classes[7] == "contempt"
    assert train.images[0, 0, 0] == 0 and train.images[1, 0, 0] == 4  # rows stay aligned with FER2013
    assert train.votes.tolist() == [[0, 8, 1, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 6]]
    assert splits["PublicTest"].labels.tolist() == [0]


def test_ferplus_votes_keep_every_row_with_the_not_a_face_column(tmp_path):
    (tmp_path / "new.csv").write_text(
        "\n".join([FERPLUS_HEADER, "Training,a.png,1,0,0,0,0,0,0,0,0,9", "PublicTest,b.png,10,0,0,0,0,0,0,0,0,0"])
    )
    votes = ferplus_votes(tmp_path / "new.csv", {"Training": 1, "PublicTest": 1})
    not_face = FERPLUS_VOTE_COLUMNS.index("NF")
    assert votes["Training"].shape == (1, 10) and votes["Training"].argmax(1).tolist() == [not_face]
    assert votes["PublicTest"].argmax(1).tolist() == [0]
    with pytest.raises(DatasetError, match="not aligned row by row"):
        ferplus_votes(tmp_path / "new.csv", {"Training": 2})


def test_ferplus_misaligned_files_are_refused(tmp_path):
    fer = _fer_csv(tmp_path / "fer.csv", ROWS)
    (tmp_path / "new.csv").write_text(FERPLUS_HEADER + "\nTraining,a.png,10,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(DatasetError, match="not aligned row by row"):
        load_ferplus(fer, tmp_path / "new.csv")


def test_ckplus_subjects_from_file_names_and_subject_disjoint_folds(tmp_path):
    for i, cls in enumerate(CKPLUS_CLASSES):
        _write_images(tmp_path / cls, [f"S{100 + (i + j) % 5:03d}_00{j}_0000001{j}.png" for j in range(3)])
    data = load_ckplus(tmp_path)
    assert len(data) == 21 and sorted(set(data.subjects.tolist())) == [100, 101, 102, 103, 104]
    folds = subject_folds(data.subjects, k=5, seed=1)
    assert len(folds) == 5
    covered = np.concatenate([test for _, test in folds])
    assert sorted(covered.tolist()) == list(range(21))  # every image tested exactly once
    for train, test in folds:
        assert not set(data.subjects[train]) & set(data.subjects[test])
    with pytest.raises(ValueError, match="need 2 <= k <= 5"):
        subject_folds(data.subjects, k=6)


def test_ckplus_bad_file_name_is_refused(tmp_path):
    _write_images(tmp_path / "happy", ["img1.png"])
    with pytest.raises(DatasetError, match=r"img1\.png: expected a CK\+ name"):
        load_ckplus(tmp_path)


def _blob(size: int = 64) -> torch.Tensor:
    """One uint8 image (1, 1, size, size): a bright 16 x 16 square in the centre of a dark field."""
    image = torch.zeros(1, 1, size, size, dtype=torch.uint8)
    image[..., size // 2 - 8 : size // 2 + 8, size // 2 - 8 : size // 2 + 8] = 200
    return image


def test_reframe_without_jitter_is_the_identity():
    batch = torch.randint(0, 256, (4, 1, 20, 20), dtype=torch.uint8)
    assert not Jitter()
    assert torch.equal(reframe(batch, Jitter()), batch)


def test_reframe_scales_and_shifts_within_the_jitter_and_repeats_borders():
    batch = _blob().repeat(256, 1, 1, 1)
    generator = torch.Generator().manual_seed(0)
    scaled = reframe(batch, Jitter(scale=0.5), generator)
    area = (scaled > 100).float().sum((1, 2, 3)) / 256  # the square's area relative to the original
    assert area.min() >= 1 / 1.5**2 * 0.8 and area.max() <= 1.5**2 * 1.2
    assert area.min() < 0.7 and area.max() > 1.4  # the frame both grows (face smaller) and shrinks
    shifted = reframe(batch, Jitter(shift=0.1), generator)
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    mass = (shifted > 100).float()[:, 0]
    dy = (mass * rows).sum((1, 2)) / mass.sum((1, 2)) - 31.5
    dx = (mass * cols).sum((1, 2)) / mass.sum((1, 2)) - 31.5
    assert dx.abs().max() <= 0.1 * 64 + 1 and dy.abs().max() <= 0.1 * 64 + 1
    assert dx.abs().max() > 3 and dy.abs().max() > 3
    flat = torch.full((8, 1, 32, 32), 90, dtype=torch.uint8)
    assert torch.equal(reframe(flat, Jitter(scale=1.0, shift=0.3, degrees=30), generator), flat)  # no black corners


def test_reframe_turns_by_at_most_the_jitter_degrees():
    bar = torch.zeros(512, 1, 65, 65, dtype=torch.uint8)
    bar[..., 30:35, 8:57] = 255  # horizontal
    turned = reframe(bar, Jitter(degrees=20), torch.Generator().manual_seed(1)).float()[:, 0]
    ys, xs = torch.meshgrid(torch.arange(65.0) - 32, torch.arange(65.0) - 32, indexing="ij")
    # the bar's orientation from its second moments
    w = turned / turned.sum((1, 2), keepdim=True)
    sxx, syy, sxy = (w * xs * xs).sum((1, 2)), (w * ys * ys).sum((1, 2)), (w * xs * ys).sum((1, 2))
    angle = torch.rad2deg(0.5 * torch.atan2(2 * sxy, sxx - syy)).abs()
    assert angle.max() <= 21 and angle.max() > 15


def test_augment_applies_the_jitter_reproducibly():
    pre = Preprocess(size=56, mean=0.5, std=0.25)
    batch = _blob().repeat(8, 1, 1, 1)
    plain = augment(batch, pre, torch.Generator().manual_seed(0))
    jittered = augment(batch, pre, torch.Generator().manual_seed(0), Jitter(scale=0.2, degrees=10))
    again = augment(batch, pre, torch.Generator().manual_seed(0), Jitter(scale=0.2, degrees=10))
    assert jittered.shape == plain.shape == (8, 3, 56, 56)
    assert torch.equal(jittered, again) and not torch.equal(jittered, plain)
