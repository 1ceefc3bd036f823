"""edgefer: facial expression recognition on edge devices, with optional help from a cloud server."""

__version__ = "0.1.0"
