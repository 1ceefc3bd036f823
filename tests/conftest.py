"""Shared fixtures: a tiny model (and its checkpoint), its preprocessing and classes, faces, a loopback cloud.

The layers of the suite follow the package's: models and data, then loading, the wire, the server,
the device, photos and video, and the commands. Markers (``make test`` runs all of them; the fast
subset is ``pytest -m "not slow and not netns"``):

* ``slow``: more than a few seconds (training, exports, subprocesses, real servers under load);
* ``netns``: needs network namespaces and tc (root); skipped with the reason where unavailable;
* ``timing``: compares wall-clock times; one-sided and generous, never a ratio.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from edgefer.data import FER2013_CLASSES, FaceData, Preprocess
from edgefer.loading import LoadedModel, save_checkpoint, wrap_model
from edgefer.models import build


def pytest_configure(config):
    """Exports made on demand (a checkpoint asked for ONNX Runtime) go to a fresh folder, not ~/.cache."""
    import os
    import tempfile

    os.environ.setdefault("EDGEFER_CACHE", tempfile.mkdtemp(prefix="edgefer-test-cache-"))


CLASSES = list(FER2013_CLASSES)
PRE = Preprocess(size=64, mean=0.5, std=0.25)  # Stage2 is 8 x 8 at 64 px: SFP uses haar
META = {"classes": CLASSES, "preprocess": vars(PRE)}
FACES = np.random.default_rng(0).integers(0, 256, (40, 48, 48), dtype=np.uint8)


def words(text: str) -> str:
    """A command's output as one line of words: rich's panel borders dropped and whitespace collapsed, so a
    message can be found whatever the terminal's width wrapped it to."""
    return " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())


def tiny_net(seed: int = 0) -> torch.nn.Module:
    """The paper's model, randomly initialised (deterministic for a seed)."""
    torch.manual_seed(seed)
    return build("shufflenet_asp_sfp", wavelet="haar").eval()


def synthetic_faces(n: int, seed: int) -> FaceData:
    """Class c is a bright horizontal band at rows 6c..6c+6 on noise: learnable, and flip-invariant."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 7, n)
    images = rng.integers(0, 80, (n, 48, 48)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 6 * c : 6 * c + 6] += 150
    return FaceData(images, labels.astype(np.int64), FER2013_CLASSES, f"synthetic-{seed}")


def tiny_fer2013_csv(folder, n: int = 160, n_train: int = 140):
    """A FER2013-format CSV of synthetic faces: ``n_train`` Training rows, the rest PublicTest."""
    faces = synthetic_faces(n, seed=3)
    rows = [
        f"{label},{' '.join(map(str, image.flatten()))},{'Training' if i < n_train else 'PublicTest'}"
        for i, (image, label) in enumerate(zip(faces.images, faces.labels, strict=True))
    ]
    path = folder / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def tiny() -> LoadedModel:
    """The tiny model, loaded as inference code sees any model."""
    return wrap_model(tiny_net(), META)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """The tiny model saved as a checkpoint folder."""
    folder = tmp_path_factory.mktemp("tiny")
    save_checkpoint(folder, tiny_net(), META)
    return folder


@pytest.fixture(scope="module")
def cloud(tiny):
    """A cloud server for the tiny model on a free loopback port (``cloud.url``, ``cloud.plane``)."""
    from edgefer.serving import BackgroundServer, DataPlane, create_app, served_models

    plane = DataPlane(served_models(tiny, large=tiny), max_delay_ms=0)
    with BackgroundServer(create_app(plane)) as server:
        server.plane = plane
        yield server
