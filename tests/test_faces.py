"""Face detection (RetinaFace, dlib, Haar), alignment and robust photo reading."""

import math
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from edgefer.faces import DETECTORS, Face, align_face, get_detector
from edgefer.photos import PhotoError, read_photo, sample_photos

GRACE_HOPPER = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # ships with matplotlib
HOPPER_FACE = (177, 106, 353, 327)  # her face, by RetinaFace; checked against the others below


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    return read_photo(GRACE_HOPPER)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_each_detector_finds_the_one_face_in_a_packaged_photo(name, hopper):
    faces = get_detector(name)(hopper)
    assert len(faces) == 1
    assert iou(faces[0].box, HOPPER_FACE) > 0.6
    if faces[0].eyes is not None:  # both eyes inside the box's upper half, left one first
        (lx, ly), (rx, ry) = faces[0].eyes
        x1, y1, x2, y2 = faces[0].box
        assert x1 < lx < rx < x2 and y1 < ly < (y1 + y2) / 2 and y1 < ry < (y1 + y2) / 2


def test_retinaface_and_dlib_give_landmarks():
    rgb = read_photo(GRACE_HOPPER)
    assert get_detector("retinaface")(rgb)[0].landmarks.shape == (5, 2)
    assert get_detector("dlib")(rgb)[0].landmarks.shape == (68, 2)


def test_a_blank_image_has_no_faces():
    blank = np.full((200, 300, 3), 127, np.uint8)
    for name in DETECTORS:
        assert get_detector(name)(blank) == []


def test_large_images_are_detected_on_a_smaller_copy_and_boxes_scaled_back(hopper):
    big = cv2.resize(hopper, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 x 2400
    detector = get_detector("retinaface", max_side=1280)
    (face,) = detector(big)
    assert iou(face.box, tuple(4 * v for v in HOPPER_FACE)) > 0.8


def test_unknown_detector_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown detector 'mtcnn'"):
        get_detector("mtcnn")


def test_alignment_levels_the_eyes():
    # Two dark "eyes" on a light square, tilted by 30 degrees about the face centre.
    gray = np.full((200, 200), 220, np.uint8)
    centre, half = np.array([100.0, 100.0]), 30.0
    angle = math.radians(30)
    offsets = [np.array([-half, -20.0]), np.array([half, -20.0])]
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    eyes = [centre + rot @ o for o in offsets]
    for x, y in eyes:
        cv2.circle(gray, (round(x), round(y)), 6, 0, -1)
    face = Face((50, 50, 150, 150), 1.0, (tuple(eyes[0]), tuple(eyes[1])))

    def eye_rows(crop):
        ys, xs = np.nonzero(crop < 110)
        left, right = ys[xs < crop.shape[1] / 2], ys[xs >= crop.shape[1] / 2]
        return left.mean(), right.mean()

    level = align_face(gray, face, size=96)
    tilted = align_face(gray, face, size=96, rotate=False)
    assert abs(np.subtract(*eye_rows(level))) < 1.5
    assert abs(np.subtract(*eye_rows(tilted))) > 20
    assert level.shape == (96, 96) and level.dtype == np.uint8


def test_alignment_crops_the_box_square_with_a_margin():
    gray = np.zeros((100, 100), np.uint8)
    gray[20:60, 30:70] = 255  # the "face": exactly the box
    crop = align_face(gray, Face((30, 20, 70, 60), 1.0), size=40, margin=0.0)
    assert crop.min() == 255
    crop = align_face(gray, Face((30, 20, 70, 60), 1.0), size=40, margin=1.0)  # twice the side
    assert 0.2 < (crop == 255).mean() < 0.3  # (1/2)^2 of the crop


# -- reading photos: every bad case gives a PhotoError naming the file ------------------------------


def _png_header_only(path, width, height):
    """A PNG that declares width x height but holds a single row of data (a decompression bomb's header)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("emotion,pixels\n0,1 2 3\n"), "not an image"),
        (lambda p: p.write_bytes(Path(GRACE_HOPPER).read_bytes()[:5000]), "corrupt or truncated"),
        (lambda p: _png_header_only(p, 30000, 30000), "too large"),
    ],
    ids=["missing", "empty", "not-an-image", "truncated", "huge"],
)
def test_bad_files_raise_a_photo_error_naming_the_file(tmp_path, make, reason):
    path = tmp_path / "photo.jpg"
    make(path)
    with pytest.raises(PhotoError, match=reason) as info:
        read_photo(path)
    assert str(path) in str(info.value)


def test_grayscale_rgba_16bit_and_palette_images_become_rgb(tmp_path):
    cases = {
        "gray.png": Image.new("L", (30, 20), 100),
        "rgba.png": Image.new("RGBA", (30, 20), (10, 20, 30, 0)),  # fully transparent: white
        "g16.png": Image.fromarray(np.full((20, 30), 65535, np.uint16)),
        "pal.gif": Image.new("P", (30, 20), 3),
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
        rgb = read_photo(tmp_path / name)
        assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8, name
    assert (read_photo(tmp_path / "gray.png") == 100).all()
    assert (read_photo(tmp_path / "rgba.png") == 255).all()
    assert (read_photo(tmp_path / "g16.png") == 255).all()


def test_exif_rotated_photos_are_turned_upright(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    image[:, :20] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(image).save(tmp_path / "r.jpg", exif=exif, quality=95)
    upright = read_photo(tmp_path / "r.jpg")
    assert upright.shape == (40, 20, 3)
    assert upright[:15].mean() > 200 and upright[25:].mean() < 50  # the white half is now on top


def test_sample_photos_ship_and_read():
    paths = sample_photos()
    assert [p.name for p in paths] == ["astronaut.jpg", "grace_hopper.jpg"]
    assert all(read_photo(p).shape[2] == 3 for p in paths)


def test_a_pasted_face_sits_at_its_frame_and_the_pipeline_cuts_it_out_again(hopper):
    from edgefer.faces.synthetic import CANVAS, paste_face, pipeline_crops

    x1, y1, x2, y2 = HOPPER_FACE
    side = max(x2 - x1, y2 - y1)
    face = cv2.resize(cv2.cvtColor(hopper[y1 : y1 + side, x1 : x1 + side], cv2.COLOR_RGB2GRAY), (48, 48))
    for background in ("replicate", "noise"):
        canvas, (left, top, s) = paste_face(face, np.random.default_rng(0), background)
        assert canvas.shape == (CANVAS, CANVAS) and 96 <= s <= 192
        pasted = cv2.resize(canvas[top : top + s, left : left + s], (48, 48), interpolation=cv2.INTER_AREA)
        assert np.abs(pasted.astype(int) - face).mean() < 6  # cubic up, area down: a little blur

        result = pipeline_crops([face] * 3, get_detector("retinaface"), background, seed=1)
        assert all(f is not None for f in result.found) and result.crops.shape == (3, 48, 48)
        for crop, found, (left, top, s) in zip(result.crops, result.found, result.frames, strict=True):
            assert iou(found.box, (left, top, left + s, top + s)) > 0.6
            assert crop.std() > 20  # a face was cut out, not the blank left for a miss
        again = pipeline_crops([face] * 3, get_detector("retinaface"), background, seed=1)
        np.testing.assert_array_equal(again.crops, result.crops)  # reproducible from the seed
    with pytest.raises(ValueError, match="unknown background"):
        paste_face(face, np.random.default_rng(0), "plaid")


def test_pipeline_crops_are_cached_per_faces_background_and_seed(hopper, tmp_path, monkeypatch):
    import edgefer.faces
    from edgefer.faces.synthetic import cached_pipeline_crops

    x1, y1, x2, y2 = HOPPER_FACE
    side = max(x2 - x1, y2 - y1)
    face = cv2.resize(cv2.cvtColor(hopper[y1 : y1 + side, x1 : x1 + side], cv2.COLOR_RGB2GRAY), (48, 48))
    faces = np.stack([face, np.full_like(face, 128)])  # a face, and a blank the detector cannot find
    cache = tmp_path / "crops.npz"
    crops, found = cached_pipeline_crops(faces, cache)
    assert found.tolist() == [True, False] and crops[0].std() > 20 and not crops[1].any()

    detections = []
    real = edgefer.faces.get_detector
    monkeypatch.setattr(edgefer.faces, "get_detector", lambda *a, **k: detections.append(a) or real(*a, **k))
    again, _ = cached_pipeline_crops(faces, cache)
    np.testing.assert_array_equal(again, crops)
    assert detections == []  # from the cache
    cached_pipeline_crops(faces, cache, "noise")
    cached_pipeline_crops(faces, cache, "noise", seed=3)
    cached_pipeline_crops(faces[:1], cache, "noise", seed=3)
    assert len(detections) == 3  # another background, seed or set of faces is detected afresh


def test_a_detector_looks_again_larger_only_where_it_found_nothing():
    from edgefer.faces import FaceDetector

    class OnlyLargeFaces(FaceDetector):  # finds its one "face" only in images at least 300 px high
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.shapes = []

        def _detect(self, rgb):
            self.shapes.append(rgb.shape[:2])
            return [Face((16.0, 32.0, 160.0, 176.0), 0.9)] if rgb.shape[0] >= 300 else []

    image = np.zeros((200, 250, 3), np.uint8)
    detector = OnlyLargeFaces(retry_scale=1.6)
    (face,) = detector(image)
    assert detector.shapes == [(200, 250), (320, 400)]
    assert face.box == pytest.approx((10.0, 20.0, 100.0, 110.0))  # back in the image's pixels
    found_first = OnlyLargeFaces(retry_scale=1.6)
    found_first(np.zeros((400, 250, 3), np.uint8))
    assert found_first.shapes == [(400, 250)]  # found at once: no second look
    capped = OnlyLargeFaces(retry_scale=1.6, max_side=300)
    assert capped(image) == [] and capped.shapes == [(200, 250)]  # 400 px would pass max_side
    never = OnlyLargeFaces()
    assert never(image) == [] and never.shapes == [(200, 250)]
    assert get_detector("retinaface").retry_scale == 1.6
    with pytest.raises(ValueError, match="retry_scale must be > 1"):
        OnlyLargeFaces(retry_scale=0.5)
