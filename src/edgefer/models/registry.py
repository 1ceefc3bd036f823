"""Named model configurations: ``build(name, num_classes=7, **overrides)`` and ``available()``.

Every backbone comes bare and with each attention order after its stride-8 stage, e.g.
``shufflenet`` (the backbone alone), ``shufflenet_asp``, ``shufflenet_sfp``, ``shufflenet_asp_sfp``
(the paper's full model, ASP then SFP) and ``shufflenet_sfp_asp``; likewise ``resnet18_*``,
``resnet50_*`` and ``mobilenet_v2_*``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .asp import DIRECTIONS
from .backbones import BACKBONES, set_branch_widths
from .fernet import ATTENTION, FERNet, attention_chain

__all__ = ["ModelConfig", "available", "build", "parse_order", "register", "resolve_config"]

ORDERS: dict[str, tuple[str, ...]] = {
    "": (),
    "asp": ("asp",),
    "sfp": ("sfp",),
    "asp_sfp": ("asp", "sfp"),
    "sfp_asp": ("sfp", "asp"),
}


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build a model, apart from the number of classes."""

    backbone: str
    order: tuple[str, ...] = ()  # attention modules, in the order they run
    insert_after: str | None = None  # None: the backbone's stride-8 stage (Stage2 for ShuffleNetV2)
    directions: tuple[str, ...] = DIRECTIONS  # ASP
    groups: int = 3  # SFP
    levels: tuple[int, ...] | None = None  # SFP; None: 1..groups
    wavelet: str = "db2"  # SFP
    mode: str = "symmetric"  # SFP
    branch_widths: tuple[int, ...] | None = None  # residual units' inner widths (a pruned model)


_CONFIGS: dict[str, ModelConfig] = {}


def register(name: str, config: ModelConfig) -> None:
    """Add a named configuration (names are unique)."""
    if name in _CONFIGS:
        raise ValueError(f"a model named {name!r} is already registered")
    if config.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {config.backbone!r}; expected one of {sorted(BACKBONES)}")
    _CONFIGS[name] = config


for _backbone in BACKBONES:
    for _suffix, _order in ORDERS.items():
        register(f"{_backbone}_{_suffix}" if _suffix else _backbone, ModelConfig(_backbone, _order))


def available(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style pattern, e.g. ``available("shufflenet*")``."""
    return sorted(fnmatch.filter(_CONFIGS, pattern))


def parse_order(order: str | Sequence[str]) -> tuple[str, ...]:
    """``"asp_sfp"``, ``"none"``, ``("sfp", "asp")``, ... as a tuple of module names."""
    if isinstance(order, str):
        key = "" if order.lower() in ("", "none") else order.lower()
        if key not in ORDERS:
            raise ValueError(f"unknown attention order {order!r}; expected one of none, {', '.join(list(ORDERS)[1:])}")
        return ORDERS[key]
    order = tuple(order)
    if order not in ORDERS.values():
        raise ValueError(f"unknown attention order {order!r}; expected one of {list(ORDERS.values())}")
    return order


def _resolve(name: str, overrides: dict[str, Any]) -> ModelConfig:
    if name not in _CONFIGS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    overrides = {k: v for k, v in overrides.items() if v is not None}  # unset options keep the defaults
    fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"backbone"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for {name!r}; expected some of {sorted(fields)}")
    if "order" in overrides:
        overrides["order"] = parse_order(overrides["order"])
    if "branch_widths" in overrides:
        overrides["branch_widths"] = tuple(int(v) for v in overrides["branch_widths"])
    for key in ("directions", "levels"):
        if key in overrides:
            value = overrides[key]
            overrides[key] = tuple(value.split(",")) if isinstance(value, str) else tuple(value)
    if "levels" in overrides:
        overrides["levels"] = tuple(int(v) for v in overrides["levels"])
        overrides.setdefault("groups", len(overrides["levels"]))
    return dataclasses.replace(_CONFIGS[name], **overrides)


def resolve_config(name: str, **overrides: Any) -> ModelConfig:
    """The configuration ``build(name, **overrides)`` would use, without building anything."""
    return _resolve(name, overrides)


def build(name: str, num_classes: int = 7, **overrides: Any) -> FERNet:
    """Build a registered model with a fresh (randomly initialised) ``num_classes`` head.

    Overrides: ``order``, ``insert_after``, ``directions``, ``groups``, ``levels``, ``wavelet``,
    ``mode``, ``branch_widths`` (a pruned ShuffleNetV2 or ResNet, see ``edgefer.prune``). ``None`` values are
    ignored. The model remembers how it was built in ``net.build_args``.
    """
    if num_classes <= 0:
        raise ValueError(f"expected a positive number of classes, got {num_classes}")
    config = _resolve(name, overrides)
    backbone = BACKBONES[config.backbone](num_classes)
    if config.branch_widths is not None:
        set_branch_widths(backbone.stages, config.branch_widths)
    stages: OrderedDict = OrderedDict()
    insert_after = config.insert_after or backbone.attention_after
    if insert_after not in backbone.channels:
        raise ValueError(
            f"cannot insert attention after {insert_after!r}; expected a stage with a feature map, "
            f"one of {list(backbone.channels)}"
        )
    for stage, module in backbone.stages.items():
        stages[stage] = module
        if stage == insert_after and config.order:
            stages[ATTENTION] = attention_chain(
                backbone.channels[stage],
                config.order,
                directions=config.directions,
                groups=config.groups,
                levels=config.levels,
                wavelet=config.wavelet,
                mode=config.mode,
            )
    net = FERNet(stages)
    net.config = config
    net.build_args = {"name": name, "num_classes": num_classes, **{k: v for k, v in overrides.items() if v is not None}}
    return net
