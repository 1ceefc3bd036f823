"""The registry, the named stages, split() and gradient flow."""

import pytest
import torch
from torch import nn

from edgefer.models import ASP, SFP, available, build

PAPER_NAMES = ["shufflenet", "shufflenet_asp", "shufflenet_sfp", "shufflenet_asp_sfp", "shufflenet_sfp_asp"]


@pytest.fixture(scope="module")
def image():
    torch.manual_seed(0)
    return torch.randn(1, 3, 224, 224)


def test_registry_lists_the_paper_models_and_other_backbones():
    names = available()
    assert set(PAPER_NAMES) <= set(names)
    for backbone in ("resnet18", "resnet50", "mobilenet_v2"):
        assert {backbone, f"{backbone}_asp", f"{backbone}_sfp", f"{backbone}_asp_sfp", f"{backbone}_sfp_asp"} <= set(
            names
        )
    assert available("resnet18*") == sorted(n for n in names if n.startswith("resnet18"))


def test_full_model_has_the_paper_stages_with_asp_then_sfp_after_stage2(image):
    net = build("shufflenet_asp_sfp")
    assert net.stage_names == ["conv1", "maxpool", "stage2", "attention", "stage3", "stage4", "conv5", "pool", "fc"]
    assert [type(m) for m in net.attention] == [ASP, SFP]
    assert net.fc.out_features == 7
    assert net(image).shape == (1, 7)
    assert build("shufflenet_sfp_asp").attention[0].__class__ is SFP
    assert "attention" not in build("shufflenet").stage_names
    assert build("shufflenet", num_classes=8).fc.out_features == 8


def test_attention_adds_about_14k_parameters():
    extra = sum(p.numel() for p in build("shufflenet_asp_sfp").parameters()) - sum(
        p.numel() for p in build("shufflenet").parameters()
    )
    assert extra == 2 * (116 + 1) + 116 * 116 + 116  # two 1x1 convs C->1, one Linear(C, C)


@pytest.mark.parametrize(
    ("name", "stage", "channels"),
    [("resnet18_asp_sfp", "layer2", 128), ("resnet50_asp_sfp", "layer2", 512), ("mobilenet_v2_asp_sfp", "stage3", 32)],
)
def test_other_backbones_get_the_modules_after_their_stride_8_stage(name, stage, channels):
    net = build(name)
    names = net.stage_names
    assert names[names.index(stage) + 1] == "attention"
    assert net.attention[0].channels == channels


def test_overrides_reach_the_modules():
    net = build("shufflenet_asp_sfp", directions=("h", "fd"), wavelet="haar", levels=(1, 1, 2, 2), mode="periodization")
    asp, sfp = net.attention
    assert asp.directions == ("h", "fd")
    assert (sfp.wavelet.name, sfp.levels, sfp.mode, len(sfp.group_sizes)) == ("haar", (1, 1, 2, 2), "periodization", 4)
    assert [type(m) for m in build("shufflenet", order="sfp_asp").attention] == [SFP, ASP]
    assert "attention" not in build("shufflenet_asp_sfp", order="none").stage_names
    moved = build("shufflenet_asp", insert_after="stage3")
    assert moved.stage_names.index("attention") == moved.stage_names.index("stage3") + 1
    assert build("shufflenet_asp", directions=None).attention[0].directions == ("h", "v", "fd", "bd")  # None: default
    assert build("shufflenet_asp_sfp", wavelet="sym3").build_args == {
        "name": "shufflenet_asp_sfp",
        "num_classes": 7,
        "wavelet": "sym3",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "vgg11"}, "unknown model"),
        ({"name": "shufflenet", "depth": 3}, "unknown override"),
        ({"name": "shufflenet", "order": "asp_asp"}, "unknown attention order"),
        ({"name": "shufflenet_asp", "insert_after": "fc"}, "cannot insert attention"),
        ({"name": "shufflenet_sfp", "wavelet": "morl"}, "discrete wavelet"),
        ({"name": "shufflenet", "num_classes": 0}, "positive number of classes"),
    ],
)
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build(**kwargs)


@pytest.mark.parametrize("name", available())
def test_split_is_exact_for_every_registered_model(name, image):
    net = build(name).eval()
    head, cloud, tail = net.split(after=net.config.insert_after or _stride8_stage(net))
    with torch.no_grad():
        assert torch.equal(tail(cloud(head(image))), net(image))
    if net.config.order:
        assert isinstance(cloud, nn.Sequential) and list(cloud) == [net.attention]
    else:
        assert isinstance(cloud, nn.Identity)


def _stride8_stage(net):
    from edgefer.models.backbones import BACKBONES

    return BACKBONES[net.config.backbone](7).attention_after


def test_paper_split_sends_the_116x28x28_stage2_map(image):
    head, cloud, tail = build("shufflenet_asp_sfp").eval().split()
    with torch.no_grad():
        feature = head(image)
        assert feature.shape == (1, 116, 28, 28)
        assert cloud(feature).shape == feature.shape
        assert tail(cloud(feature)).shape == (1, 7)


@pytest.mark.parametrize(
    "after", ["conv1", "maxpool", "stage2", "attention", "stage3", "stage4", "conv5", "pool", "fc"]
)
def test_split_after_any_named_stage_is_exact(after, image):
    net = build("shufflenet_asp_sfp").eval()
    with torch.no_grad():
        expected = net(image)
        head, cloud, tail = net.split(after=after)
        assert torch.equal(tail(cloud(head(image))), expected)
        # Neurosurgeon-style: the cloud runs everything after the split and returns logits.
        head, cloud, tail = net.split(after=after, until="fc")
        assert isinstance(tail, nn.Identity)
        assert torch.equal(cloud(head(image)), expected)


def test_split_refuses_unknown_or_reversed_stages():
    net = build("shufflenet_asp_sfp")
    with pytest.raises(ValueError, match="unknown stage 'stage9'"):
        net.split(after="stage9")
    with pytest.raises(ValueError, match="comes before"):
        net.split(after="stage3", until="stage2")


@pytest.mark.parametrize("name", ["shufflenet_asp_sfp", "shufflenet_sfp_asp"])
def test_gradients_reach_the_backbone_through_both_modules(name):
    net = build(name).train()
    loss = nn.functional.cross_entropy(net(torch.randn(2, 3, 224, 224)), torch.tensor([0, 3]))
    loss.backward()
    assert net.conv1[0].weight.grad.abs().sum() > 0
    for module in net.attention:
        for param in module.parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0
