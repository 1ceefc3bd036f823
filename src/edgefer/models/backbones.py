"""torchvision backbones (``weights=None``) cut into named stages.

Each builder returns the stages in order, ending in ``pool`` (global average pooling + flatten) and
``fc`` (a new classifier for ``num_classes``), the channels each stage outputs, and the stage that
ends at stride 8 (28 x 28 at 224 px), where the attention modules go by default, as after
ShuffleNetV2's Stage2 in the paper.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn
from torchvision import models as tvm

__all__ = ["BACKBONES", "Backbone", "branch_widths", "residual_units", "set_branch_widths"]


@dataclass
class Backbone:
    stages: OrderedDict[str, nn.Module]
    channels: dict[str, int]  # output channels of every stage before ``pool``
    attention_after: str  # the stride-8 stage


def _pool() -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))


def _shufflenet(builder: Callable[..., tvm.ShuffleNetV2], num_classes: int) -> Backbone:
    net = builder(weights=None, num_classes=num_classes)
    names = ["conv1", "maxpool", "stage2", "stage3", "stage4", "conv5"]
    out = net._stage_out_channels  # x1.0: [24, 116, 232, 464, 1024]
    channels = dict(zip(names, [out[0], out[0], *out[1:]], strict=True))
    stages = OrderedDict((name, getattr(net, name)) for name in names)
    stages.update(pool=_pool(), fc=net.fc)
    return Backbone(stages, channels, attention_after="stage2")


def shufflenet(num_classes: int) -> Backbone:
    """ShuffleNetV2 x1.0 (Ma et al. 2018): conv1, maxpool, stage2-4, conv5, pool, fc."""
    return _shufflenet(tvm.shufflenet_v2_x1_0, num_classes)


def shufflenet_x2(num_classes: int) -> Backbone:
    """ShuffleNetV2 x2.0: the same stages, every width about doubled (5.4 M parameters)."""
    return _shufflenet(tvm.shufflenet_v2_x2_0, num_classes)


SHUFFLENET_STAGES = ("stage2", "stage3", "stage4")
RESNET_STAGES = ("layer1", "layer2", "layer3", "layer4")


def residual_units(stages: dict[str, nn.Module]) -> list[nn.Module]:
    """The units whose main branch has inner channels that nothing outside the unit sees, in order.

    ShuffleNetV2: the 16 units (``InvertedResidual``) of Stage2-4, whose ``branch2`` is 1x1 conv, BN,
    ReLU, 3x3 depthwise conv, BN, 1x1 conv, BN, ReLU. ResNet with basic blocks (ResNet-18/34): the
    ``BasicBlock`` of layer1-4, 3x3 conv, BN, ReLU, 3x3 conv, BN. Raises ``ValueError`` for others.
    """
    if all(name in stages for name in SHUFFLENET_STAGES):
        units = [unit for name in SHUFFLENET_STAGES for unit in stages[name]]
        if all(hasattr(unit, "branch2") for unit in units):
            return units
    if all(name in stages for name in RESNET_STAGES):
        units = [unit for name in RESNET_STAGES for unit in stages[name]]
        if all(isinstance(unit, tvm.resnet.BasicBlock) for unit in units):
            return units
    raise ValueError("branch widths apply to ShuffleNetV2 and basic-block ResNet models only")


def branch_widths(stages: dict[str, nn.Module]) -> list[int]:
    """The inner width of each unit's main branch (between its first and its last convolution)."""
    return [_first_conv(unit).out_channels for unit in residual_units(stages)]


def _first_conv(unit: nn.Module) -> nn.Conv2d:
    return unit.conv1 if isinstance(unit, tvm.resnet.BasicBlock) else unit.branch2[0]


def set_branch_widths(stages: dict[str, nn.Module], widths: tuple[int, ...] | list[int]) -> None:
    """Rebuild each unit's main branch with the given inner width (fresh weights), e.g. for a pruned model.

    The inner channels (after the branch's first convolution, before its last) can change without
    touching anything outside the unit: its input, output, shortcut and stride stay as they are.
    """
    units = residual_units(stages)
    if len(widths) != len(units) or any(int(w) < 1 for w in widths):
        raise ValueError(f"expected {len(units)} positive branch widths, got {list(widths)}")
    for unit, width in zip(units, widths, strict=True):
        if isinstance(unit, tvm.resnet.BasicBlock):
            inp, out, stride = unit.conv1.in_channels, unit.conv2.out_channels, unit.conv1.stride
            unit.conv1 = nn.Conv2d(inp, width, 3, stride=stride, padding=1, bias=False)
            unit.bn1 = nn.BatchNorm2d(width)
            unit.conv2 = nn.Conv2d(width, out, 3, padding=1, bias=False)
            continue
        b = unit.branch2
        inp, out, stride = b[0].in_channels, b[5].out_channels, b[3].stride
        b[0] = nn.Conv2d(inp, width, 1, bias=False)
        b[1] = nn.BatchNorm2d(width)
        b[3] = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=width, bias=False)
        b[4] = nn.BatchNorm2d(width)
        b[5] = nn.Conv2d(width, out, 1, bias=False)


def _resnet(builder: Callable[..., tvm.ResNet], num_classes: int) -> Backbone:
    net = builder(weights=None, num_classes=num_classes)
    stages: OrderedDict[str, nn.Module] = OrderedDict(
        conv1=nn.Sequential(net.conv1, net.bn1, net.relu),
        maxpool=net.maxpool,
        layer1=net.layer1,
        layer2=net.layer2,
        layer3=net.layer3,
        layer4=net.layer4,
    )
    width = net.fc.in_features // 8  # 64 for BasicBlock, 256 for Bottleneck
    channels = {"conv1": 64, "maxpool": 64, "layer1": width, "layer2": 2 * width, "layer3": 4 * width}
    channels["layer4"] = net.fc.in_features
    stages.update(pool=_pool(), fc=net.fc)
    return Backbone(stages, channels, attention_after="layer2")


def resnet18(num_classes: int) -> Backbone:
    """ResNet-18 (He et al. 2016): conv1, maxpool, layer1-4, pool, fc."""
    return _resnet(tvm.resnet18, num_classes)


def resnet50(num_classes: int) -> Backbone:
    """ResNet-50 (He et al. 2016): conv1, maxpool, layer1-4, pool, fc."""
    return _resnet(tvm.resnet50, num_classes)


def mobilenet_v2(num_classes: int) -> Backbone:
    """MobileNetV2 (Sandler et al. 2018), its 19 feature blocks grouped by resolution.

    conv1 (112 px), stage1 (112), stage2 (56), stage3 (28), stage4 (14), stage5 (7), conv_last, pool, fc.
    """
    net = tvm.mobilenet_v2(weights=None, num_classes=num_classes)
    f = net.features
    groups = {
        "conv1": f[0:1],
        "stage1": f[1:2],
        "stage2": f[2:4],
        "stage3": f[4:7],
        "stage4": f[7:14],
        "stage5": f[14:18],
        "conv_last": f[18:19],
    }
    stages: OrderedDict[str, nn.Module] = OrderedDict(groups)
    channels = {name: block[-1].out_channels for name, block in groups.items()}
    stages.update(pool=_pool(), fc=net.classifier)  # classifier = Dropout + Linear
    return Backbone(stages, channels, attention_after="stage3")


class _SeparableConv(nn.Sequential):
    """Keras' SeparableConv2D without bias: a 3x3 depthwise then a 1x1 pointwise convolution."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class XceptionBlock(nn.Module):
    """mini-Xception's module: two separable convolutions and a strided max-pool, plus a strided
    1x1 convolution on the shortcut; the output has half the input's side."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _SeparableConv(in_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            _SeparableConv(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), nn.BatchNorm2d(out_channels)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


def mini_xception(num_classes: int) -> Backbone:
    """mini-Xception (Arriaga et al. 2017, "Real-time Convolutional Neural Networks for Emotion and
    Gender Classification"), the model of the ``fer`` package and the Light-FER family: about 60 k
    parameters. conv1 (two unpadded 3x3 convolutions of 8 channels), block1-4 (16, 32, 64, 128
    channels, each halving the side), fc (a 3x3 convolution to one map per class), pool (global
    average). As in the original, the classifier comes before the pooling; it is named ``fc`` so
    that fine-tuning with a new head replaces it.
    """

    def conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    widths = (16, 32, 64, 128)
    stages: OrderedDict[str, nn.Module] = OrderedDict(conv1=nn.Sequential(*conv_bn_relu(3, 8), *conv_bn_relu(8, 8)))
    for i, (cin, cout) in enumerate(zip((8, *widths), widths, strict=False), start=1):
        stages[f"block{i}"] = XceptionBlock(cin, cout)
    stages["fc"] = nn.Conv2d(widths[-1], num_classes, 3, padding=1)
    stages["pool"] = _pool()
    channels = {"conv1": 8, **{f"block{i}": w for i, w in enumerate(widths, start=1)}}
    return Backbone(stages, channels, attention_after="block3")  # conv1 keeps the size: block3 is at stride 8


BACKBONES: dict[str, Callable[[int], Backbone]] = {
    "shufflenet": shufflenet,
    "shufflenet_x2": shufflenet_x2,
    "mini_xception": mini_xception,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
}
