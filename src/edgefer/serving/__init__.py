"""The cloud server: the Open Inference Protocol (KServe v2) over HTTP/REST, with dynamic batching."""

from .app import create_app
from .dataplane import DataPlane, ServedModel, served_models
from .server import BackgroundServer

__all__ = ["BackgroundServer", "DataPlane", "ServedModel", "create_app", "served_models"]
