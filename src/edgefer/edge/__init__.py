"""The edge side: run faces locally, split with the cloud, or in the cloud, with local fallback."""

from .runtime import STRATEGIES, Breakdown, CloudError, EdgeRunner, Prediction

__all__ = ["STRATEGIES", "Breakdown", "CloudError", "EdgeRunner", "Prediction"]
