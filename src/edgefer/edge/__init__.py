"""The device side: run faces locally, split with the cloud, in the cloud, auto or escalate, with local fallback.

Imports neither the server nor training: the device needs the model, the wire format and an HTTP client.
"""

from .client import CloudClient, CloudDown, CloudError
from .device import Device
from .planner import FIXED_PLANS, STRATEGIES, Plan
from .results import Breakdown, Prediction
from .runtime import EdgeRunner

__all__ = [
    "FIXED_PLANS",
    "STRATEGIES",
    "Breakdown",
    "CloudClient",
    "CloudDown",
    "CloudError",
    "Device",
    "EdgeRunner",
    "Plan",
    "Prediction",
]
