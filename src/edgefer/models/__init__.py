"""Networks: ShuffleNetV2 (and ResNet, MobileNetV2) with the paper's ASP and SFP attention."""

from .asp import ASP, DIRECTIONS
from .fernet import FERNet
from .registry import ModelConfig, available, build, register
from .sfp import SFP

__all__ = ["ASP", "DIRECTIONS", "SFP", "FERNet", "ModelConfig", "available", "build", "register"]
