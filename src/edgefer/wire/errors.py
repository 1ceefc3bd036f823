"""Typed serving errors, each mapped once to its HTTP status; bodies are ``{"error": "..."}``."""

from __future__ import annotations

__all__ = [
    "InvalidInput",
    "ModelNotFound",
    "PayloadTooLarge",
    "RequestTimeout",
    "ServiceUnavailable",
    "ServingError",
    "TooManyHeaders",
    "Unauthorized",
    "UnsupportedEncoding",
]


class ServingError(Exception):
    status = 500


class InvalidInput(ServingError, ValueError):
    """Malformed JSON, wrong shape or datatype, NaN/Inf, truncated binary data: 400."""

    status = 400


class Unauthorized(ServingError):
    status = 401


class ModelNotFound(ServingError):
    status = 404


class RequestTimeout(ServingError):
    status = 408


class PayloadTooLarge(ServingError):
    status = 413


class TooManyHeaders(ServingError):
    status = 431


class ServiceUnavailable(ServingError):
    """The model is momentarily unavailable (a replica restarting): try again."""

    status = 503


class UnsupportedEncoding(ServingError):
    status = 415
