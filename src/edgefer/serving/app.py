"""The Open Inference Protocol over HTTP/REST (Starlette), in front of a :class:`DataPlane`.

Routes: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``, ``GET /v2/models/{name}``,
``GET /v2/models/{name}/ready``, ``POST /v2/repository/index`` and
``POST /v2/models/{name}[/versions/{v}]/infer`` (JSON tensors or binary tensor data).

* With a token, every route but health needs ``Authorization: Bearer <token>`` (else 401).
* Bodies are read up to ``max_body_bytes`` (else 413), before and after ``Content-Encoding``
  (zstd, gzip, deflate); responses are compressed when the client's ``Accept-Encoding`` allows.
* Every refusal is a 4xx with ``{"error": "..."}``; an unexpected failure is a 500 with the same
  shape, and the server keeps serving.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..wire.errors import InvalidInput, PayloadTooLarge, ServingError, Unauthorized
from ..wire.protocol import HEADER_LENGTH, compress, decode_message, decompress, encode_message
from .dataplane import DataPlane

__all__ = ["DEFAULT_MAX_BODY", "check_bind", "create_app"]

log = logging.getLogger(__name__)
DEFAULT_MAX_BODY = 4 * 1024 * 1024


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token."""
    if token:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"refusing to listen on {host} without a token: anyone who can reach it could use the server. "
            "Pass --token-file, or bind to 127.0.0.1"
        )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
    return bytes(body)


def _accepted_encoding(request: Request) -> str | None:
    accepted = {part.split(";")[0].strip() for part in request.headers.get("accept-encoding", "").split(",")}
    return next((e for e in ("zstd", "gzip", "deflate") if e in accepted), None)


def create_app(plane: DataPlane, *, token: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY) -> Starlette:
    def authorize(request: Request) -> None:
        if token is None:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise Unauthorized("missing or wrong bearer token")

    async def live(request: Request) -> Response:
        return JSONResponse({"live": plane.live()})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": plane.ready()}, status_code=200 if plane.ready() else 503)

    async def server_metadata(request: Request) -> Response:
        authorize(request)
        return JSONResponse(plane.server_metadata())

    async def model_metadata(request: Request) -> Response:
        authorize(request)
        return JSONResponse(plane.model(request.path_params["name"]).metadata())

    async def model_ready(request: Request) -> Response:
        authorize(request)
        plane.model(request.path_params["name"])
        return JSONResponse({"ready": plane.ready()}, status_code=200 if plane.ready() else 503)

    async def repository_index(request: Request) -> Response:
        authorize(request)
        return JSONResponse(plane.repository_index())

    async def infer(request: Request) -> Response:
        authorize(request)
        name = request.path_params["name"]
        plane.model(name)  # 404 before reading a large body
        body = await _read_body(request, max_body_bytes)
        body = decompress(body, request.headers.get("content-encoding"), max_body_bytes)
        message = decode_message(body, request.headers.get(HEADER_LENGTH), kind="inputs")
        response = await plane.infer(name, message)
        binary = bool(message.parameters.get("binary_data_output")) or any(
            p.get("binary_data") for p in message.requested_outputs.values()
        )
        payload, headers = encode_message(response, kind="outputs", binary=binary)
        encoding = _accepted_encoding(request)
        if encoding is not None:
            payload, headers["Content-Encoding"] = compress(payload, encoding), encoding
        return Response(payload, headers=headers)

    async def http_error(request: Request, exc: HTTPException) -> Response:  # unknown route, wrong method
        return JSONResponse(
            {"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code
        )

    async def serving_error(request: Request, exc: Exception) -> Response:
        status = exc.status if isinstance(exc, ServingError) else 500
        if status == 500:
            log.exception("unexpected error on %s", request.url.path, exc_info=exc)
        return JSONResponse({"error": str(exc) if status != 500 else f"internal error: {exc}"}, status_code=status)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        await plane.start()
        try:
            yield
        finally:
            await plane.stop()

    routes = [
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2", server_metadata),
        Route("/v2/models/{name}", model_metadata),
        Route("/v2/models/{name}/versions/{version}", model_metadata),
        Route("/v2/models/{name}/ready", model_ready),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/models/{name}/infer", infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", infer, methods=["POST"]),
    ]
    handlers = {
        HTTPException: http_error,
        ServingError: serving_error,
        InvalidInput: serving_error,
        Exception: serving_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
