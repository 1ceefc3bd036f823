"""The Open Inference Protocol over HTTP/REST (Starlette), in front of a :class:`DataPlane`.

Routes: ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2``, ``GET /v2/models/{name}``,
``GET /v2/models/{name}/ready``, ``POST /v2/repository/index`` and
``POST /v2/models/{name}[/versions/{v}]/infer`` (JSON tensors or binary tensor data).

* With a token, every route but health needs ``Authorization: Bearer <token>`` (else 401).
* Every bound of :class:`~edgefer.serving.limits.ServerLimits` is enforced before work is spent:
  the body is read up to ``max_body_bytes`` (413) within ``body_timeout_s`` (408), before and after
  ``Content-Encoding`` (zstd, gzip, deflate); more than ``max_headers`` headers is a 431. Responses
  are compressed when the client's ``Accept-Encoding`` allows.
* Parsing the message, decoding images and preparing the batch run in a worker thread, so a large
  request never stalls the event loop (health checks, other clients).
* Every refusal is a 4xx with ``{"error": "..."}`` and no traceback in the log; only an unexpected
  failure is a 500 (same shape, one log entry), and the server keeps serving. A client that
  disconnects mid-body gets nothing and leaves no trace.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..wire.errors import InvalidInput, PayloadTooLarge, RequestTimeout, ServingError, TooManyHeaders, Unauthorized
from ..wire.protocol import HEADER_LENGTH, compress, decode_message, decompress, encode_message
from .dataplane import DataPlane
from .limits import ServerLimits

__all__ = ["check_bind", "create_app"]

log = logging.getLogger(__name__)


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


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"the body is over the limit of {limit} bytes")
    except TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {timeout:g} s") from None
    return bytes(body)


def _accepted_encoding(request: Request) -> str | None:
    accepted = {part.split(";")[0].strip() for part in request.headers.get("accept-encoding", "").split(",")}
    return next((e for e in ("zstd", "gzip", "deflate") if e in accepted), None)


def create_app(plane: DataPlane, *, token: str | None = None, limits: ServerLimits | None = None) -> Starlette:
    limits = limits or plane.limits

    def authorize(request: Request) -> None:
        raw = request.headers.raw
        if len(raw) > limits.max_headers:
            raise TooManyHeaders(f"{len(raw)} headers; the limit is {limits.max_headers}")
        if sum(len(k) + len(v) + 4 for k, v in raw) > limits.max_header_bytes:  # h11 bounds only incomplete ones
            raise TooManyHeaders(f"the headers are over {limits.max_header_bytes} bytes")
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
        model = plane.model(name)  # 404 before reading a large body
        body = await _read_body(request, limits.max_body_bytes, limits.body_timeout_s)
        encoding, header_length = request.headers.get("content-encoding"), request.headers.get(HEADER_LENGTH)

        def parse():  # decompress, parse and validate (images decoded) off the event loop
            message = decode_message(decompress(body, encoding, limits.max_body_bytes), header_length, kind="inputs")
            return message, plane.validate(model, message)

        message, prepared = await run_in_threadpool(parse)
        response = await plane.infer(name, message, prepared)
        binary = bool(message.parameters.get("binary_data_output")) or any(
            p.get("binary_data") is True for p in message.requested_outputs.values()
        )
        payload, headers = encode_message(response, kind="outputs", binary=binary)
        accepted = _accepted_encoding(request)
        if accepted is not None:
            payload, headers["Content-Encoding"] = compress(payload, accepted), accepted
        return Response(payload, headers=headers)

    async def http_error(request: Request, exc: HTTPException) -> Response:  # unknown route, wrong method
        return JSONResponse(
            {"error": f"{exc.detail}: {request.method} {request.url.path}"}, status_code=exc.status_code
        )

    async def serving_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClientDisconnect):  # nobody is left to answer: no error, no log
            return Response(status_code=400)
        status = exc.status if isinstance(exc, ServingError) else 500
        if status == 500:
            log.error("unexpected error on %s: %s: %s", request.url.path, type(exc).__name__, exc, exc_info=exc)
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
        ClientDisconnect: serving_error,
        Exception: serving_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
