"""The `edgefer` command line: the entry point, --help everywhere, `models` and `profile`."""

import json
import shutil
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from conftest import words
from edgefer.cli.main import app
from edgefer.models import available

runner = CliRunner()


def test_entry_point_is_installed_and_shows_help():
    exe = shutil.which("edgefer") or str(sys.executable).replace("python", "edgefer")
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "profile" in words(result.stdout) and "models" in words(result.stdout)


COMMANDS = sorted(typer.main.get_command(app).commands)


def test_the_command_list_is_complete():
    assert {"train", "evaluate", "serve", "predict", "video", "demo", "export", "prune", "offload-bench"} <= set(
        COMMANDS
    )


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in words(result.output)  # rich truncates long option names in a narrow terminal: no more text


def test_models_lists_the_registry_and_stages():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    assert result.output.split() == available()
    result = runner.invoke(app, ["models", "shufflenet_asp_sfp", "--stages"])
    assert result.output.split() == [
        "shufflenet_asp_sfp", "conv1", "maxpool", "stage2", "attention", "stage3", "stage4", "conv5", "pool", "fc"
    ]  # fmt: skip


def test_profile_json_reports_params_macs_and_latency():
    args = ["profile", "--models", "shufflenet,shufflenet_asp_sfp", "--rounds", "1", "--per-round", "2", "--json"]
    result = runner.invoke(app, [*args, "--input-size", "192", "--no-onnx"])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert rows["shufflenet"]["params"] == 1_260_779  # torchvision ShuffleNetV2 x1.0 with a 7-class head
    assert rows["shufflenet_asp_sfp"]["params"] - rows["shufflenet"]["params"] == 13_806
    assert rows["shufflenet_asp_sfp"]["macs"] > rows["shufflenet"]["macs"] > 0
    assert rows["shufflenet"]["eager_ratio"] == 1.0
    assert rows["shufflenet_asp_sfp"]["eager_ms"] > 0 and rows["shufflenet_asp_sfp"]["ort_ms"] is None


@pytest.mark.slow
def test_profile_table_with_onnx_runtime():
    args = ["profile", "--models", "shufflenet_asp", "--rounds", "1", "--per-round", "1", "--input-size", "64"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    header, row = result.stdout.strip().splitlines()[-2:]
    assert header.split()[:4] == ["model", "params", "MACs", "eager"]
    assert row.startswith("shufflenet_asp") and len(row.split()) >= 7  # name, params, MACs, eager, ORT


def test_refused_input_is_a_one_line_error_not_a_traceback():
    exe = shutil.which("edgefer") or str(sys.executable).replace("python", "edgefer")
    args = [exe, "profile", "--models", "shufflenet_sfp", "--input-size", "96", "--rounds", "1", "--no-onnx"]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("edgefer: error: input of size 12 is too small")
    assert "Traceback" not in result.stderr


def test_serve_refuses_a_public_address_without_a_token():
    exe = shutil.which("edgefer") or str(sys.executable).replace("python", "edgefer")
    result = subprocess.run([exe, "serve", "--host", "0.0.0.0"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a token" in words(result.stderr)


def test_profile_refuses_unknown_models():
    result = runner.invoke(app, ["profile", "--models", "vgg*"])
    assert result.exit_code != 0
    assert "no model matches 'vgg*'" in words(result.output)


def test_ensemble_writes_a_mirrored_checkpoint_and_needs_two_members_unless_mirrored(tiny_checkpoint, tmp_path):
    from edgefer.loading import load_model

    out = tmp_path / "large"
    result = runner.invoke(app, ["ensemble", str(tiny_checkpoint), str(tiny_checkpoint), "--out", str(out)])
    assert result.exit_code == 0, result.output
    large = load_model(out)
    assert large.meta.name == "ensemble" and large.net.mirror and len(large.net.members) == 2
    alone = ["ensemble", str(tiny_checkpoint), "--out", str(tmp_path / "one")]
    assert runner.invoke(app, [*alone, "--no-mirror"]).exit_code == 2
    assert runner.invoke(app, alone).exit_code == 0  # one model and its mirror image
    # that one-member ensemble (as default-large is) joins another as its network, not as a nested ensemble
    pair = tmp_path / "pair"
    joined = runner.invoke(app, ["ensemble", str(tmp_path / "one"), str(tiny_checkpoint), "--out", str(pair)])
    assert joined.exit_code == 0, joined.output
    assert [m["name"] for m in load_model(pair).meta.build["members"]] == [large.meta.build["members"][0]["name"]] * 2
    half = tmp_path / "half"
    assert runner.invoke(app, [*alone[:-1], str(half), "--weights", "float16"]).exit_code == 0
    assert (half / "model.safetensors").stat().st_size < 0.55 * (tmp_path / "one" / "model.safetensors").stat().st_size
    int8_dir = tmp_path / "int8"
    assert runner.invoke(app, [*alone[:-1], str(int8_dir), "--weights", "int8"]).exit_code == 0
    assert load_model(int8_dir).meta.extra["weights_dtype"] == "int8"
    assert (int8_dir / "model.safetensors").stat().st_size < 0.8 * (half / "model.safetensors").stat().st_size
    int4_dir = tmp_path / "int4"
    assert runner.invoke(app, [*alone[:-1], str(int4_dir), "--weights", "int4"]).exit_code == 0
    assert load_model(int4_dir).meta.extra["weights_dtype"] == "int4"
    assert (int4_dir / "model.safetensors").stat().st_size < 0.7 * (int8_dir / "model.safetensors").stat().st_size
    assert runner.invoke(app, [*alone[:-1], str(tmp_path / "x"), "--weights", "int2"]).exit_code == 2
