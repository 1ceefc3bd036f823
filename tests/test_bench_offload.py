"""The offload bench: devices, teardown of links and servers, and the command's records and figure."""

import json
import subprocess

import pytest
from matplotlib import cbook
from typer.testing import CliRunner

from edgefer.bench.netem import LinkSpec, netns_available
from edgefer.bench.offload import parse_devices, start_cloud
from edgefer.cli.main import app

NETNS_OK, WHY_NOT = netns_available()


def test_parse_devices():
    assert parse_devices("laptop,phone,watch=6") == {"laptop": 1.0, "phone": 2.25, "watch": 6.0}
    with pytest.raises(ValueError, match="unknown device"):
        parse_devices("toaster")
    with pytest.raises(ValueError, match=">= 1"):
        parse_devices("fast=0.5")


@pytest.mark.netns
@pytest.mark.skipif(not NETNS_OK, reason=f"no network namespaces here: {WHY_NOT}")
def test_bench_teardown_leaves_no_namespace_qdisc_or_server():
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    with pytest.raises(KeyError), start_cloud(LinkSpec(500, 0)) as cloud:
        process, ns = cloud.process, cloud.link.edge_ns
        assert ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        raise KeyError("boom")
    assert process.poll() is not None
    assert subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout == before
    assert ns not in subprocess.run(["tc", "qdisc", "show"], capture_output=True, text=True).stdout


@pytest.mark.slow
def test_offload_bench_cli_writes_records_and_a_plot(tmp_path):
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    out, plot = tmp_path / "o.json", tmp_path / "o.png"
    args = ["offload-bench", "--images", photo, "--bandwidths", "500", "--requests", "3", "--devices", "laptop,slow=3",
            "--strategies", "edge,split,auto", "--json", str(out), "--plot", str(plot)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())["records"]
    assert len(records) == 2 * 3
    keys = {"device", "bandwidth_kbps", "strategy", "median_ms", "p90_ms", "bytes_up", "bytes_down"}
    assert all(keys <= set(r) for r in records)
    split = next(r for r in records if r["strategy"] == "split")
    assert split["bytes_up"] > 1000 and split["bytes_down"] > 1000
    assert next(r for r in records if r["strategy"] == "edge")["bytes_up"] == 0
    assert plot.stat().st_size > 10_000
