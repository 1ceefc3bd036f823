"""Broken files given to the commands: a clear error naming the file (and line), never a traceback,
and a batch that carries on past a bad file."""

import gzip
import os
import shutil

import pytest
from typer.testing import CliRunner

from conftest import tiny_fer2013_csv, words
from edgefer.cli.main import main
from edgefer.data import DatasetError, load_fer2013
from edgefer.photos import PhotoError, iter_photos, read_photo, sample_photos

runner = CliRunner()


def _run(args):
    """The real entry point (its error handling included), as a user runs it."""
    import sys

    old = sys.argv
    sys.argv = ["edgefer", *args]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = old
    return exit_info.value.code


PIXELS = " ".join(["128"] * 2304)
HEADER = "emotion,pixels,Usage\n"
GOOD = (HEADER + f"0,{PIXELS},PublicTest\n" * 50).encode()
BROKEN = {  # file name -> (its bytes, what the error must say); None: the file does not exist
    "missing.csv": (None, "no such file"),
    "garbled.csv.gz": (b"\x1f\x8b" + b"x" * 50, "gzip"),
    "fake.csv.gz": (HEADER.encode(), "not a gzip file"),
    "truncated.csv.gz": (gzip.compress(GOOD)[:-40], "truncated"),
    "superscript.csv": ((HEADER + f"\u00b2,{PIXELS},PublicTest\n").encode(), ":2: emotion"),
    "huge-field.csv": ((HEADER + f"0,{'1 ' * 200_000},PublicTest\n").encode(), ":2:"),
    "latin1.csv": (HEADER.encode() + b"0,\xff\xfe,PublicTest\n", "not UTF-8"),
    "long-header.csv": ((",".join(["x"] * 3000) + "\n").encode(), "expected the columns"),
}


@pytest.mark.parametrize("name", list(BROKEN))
def test_broken_dataset_files_name_the_file_and_never_trace_back(tmp_path, name, capsys):
    content, message = BROKEN[name]
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError) as error:
        load_fer2013(path)
    assert message in str(error.value) and name in str(error.value)
    assert len(str(error.value)) < 400  # not the whole row
    code = _run(["evaluate", "--data", str(path), "--checkpoint", "default"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and name in words(err)


def test_a_valid_tiny_csv_still_loads(tmp_path):
    splits = load_fer2013(tiny_fer2013_csv(tmp_path))
    assert set(splits) == {"Training", "PublicTest"}


def test_photos_with_odd_names_and_broken_links_are_reported_and_the_batch_goes_on(tmp_path, capsys):
    photo = sample_photos()[0]
    shutil.copy(photo, tmp_path / "ok.jpg")
    odd = os.fsencode(tmp_path) + b"/caf\xe9.jpg"
    shutil.copy(photo, odd)
    (tmp_path / "dangling.jpg").symlink_to(tmp_path / "nothing.jpg")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "up").symlink_to(tmp_path)  # a folder loop: not followed
    files = list(iter_photos([tmp_path]))
    assert len(files) == 4  # ok, the odd name, and both broken links (reported, not dropped)
    with pytest.raises(PhotoError, match="broken symbolic link"):
        read_photo(tmp_path / "dangling.jpg")
    with pytest.raises(PhotoError, match="loop"):
        read_photo(tmp_path / "loop.jpg")
    csv_path = tmp_path / "out.csv"
    code = _run(["predict", str(tmp_path), "--json", "--csv", str(csv_path)])
    captured = capsys.readouterr()
    assert code == 1  # two files could not be read
    lines = [line for line in captured.out.splitlines() if line.startswith("{")]
    assert len(lines) == 4 and sum('"faces"' in line for line in lines) == 2
    assert "caf\\\\xe9.jpg" in captured.out  # the name escaped, valid JSON
    assert len(csv_path.read_text().splitlines()) == 3  # header + one face in each readable photo
    assert "broken symbolic link" in words(captured.err) and "Traceback" not in captured.err


def test_serve_with_a_missing_token_file_is_a_clean_error(tmp_path, capsys):
    code = _run(["serve", "--token-file", str(tmp_path / "missing.txt")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "missing.txt" in words(err)
