"""Open Inference Protocol (KServe v2) tensors over HTTP/REST, with the binary tensor data extension.

A message (request or response) is a JSON object, optionally followed by the raw bytes of the
tensors whose ``parameters.binary_data_size`` is set, in order; the JSON's length is then sent in
the ``Inference-Header-Content-Length`` header. Binary data is little-endian, row-major. The same
encode/decode functions serve the server and our edge client, so both sides agree by construction.

Decoding trusts nothing: every field is type-checked before it is used, nesting is bounded
(``MAX_DEPTH``), a tensor's element count is computed exactly and bounded by what the body can hold,
JSON data must fit its datatype (no silent wrap, no overflow), compressed bodies must end where
their data ends, and every failure is an :class:`InvalidInput` (400) or :class:`PayloadTooLarge`
(413) naming the field. Encoding refuses NaN and infinities, so a response is always standard JSON.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zstandard

from .errors import InvalidInput, PayloadTooLarge, UnsupportedEncoding

__all__ = [
    "DATATYPES",
    "HEADER_LENGTH",
    "Message",
    "TensorData",
    "compress",
    "decode_message",
    "decompress",
    "encode_message",
]

HEADER_LENGTH = "Inference-Header-Content-Length"
MAX_DEPTH = 32  # JSON nesting; a v2 message needs 5
DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_NAME_OF = {dtype: name for name, dtype in DATATYPES.items()}


@dataclass
class TensorData:
    name: str
    data: np.ndarray
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def datatype(self) -> str:
        if self.data.dtype == object:
            return "BYTES"
        name = _NAME_OF.get(self.data.dtype.newbyteorder("<"))
        if name is None:
            raise InvalidInput(f"tensor {self.name!r}: numpy dtype {self.data.dtype} has no v2 datatype")
        return name


@dataclass
class Message:
    """The parts of a v2 inference request or response that edgefer uses."""

    tensors: list[TensorData]  # inputs of a request, outputs of a response
    parameters: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    model_name: str | None = None
    requested_outputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # request only

    def tensor(self, name: str) -> TensorData:
        for t in self.tensors:
            if t.name == name:
                return t
        raise InvalidInput(f"no tensor named {name!r}; got {[t.name for t in self.tensors]}")


def encode_message(message: Message, *, kind: str, binary: bool = True) -> tuple[bytes, dict[str, str]]:
    """Serialise a request (``kind="inputs"``) or response (``kind="outputs"``); returns body and headers."""
    header: dict[str, Any] = {}
    if message.id is not None:
        header["id"] = message.id
    if message.model_name is not None:
        header["model_name"] = message.model_name
    if message.parameters:
        header["parameters"] = message.parameters
    chunks, entries = [], []
    for t in message.tensors:
        is_bytes = t.datatype == "BYTES"
        data = t.data if is_bytes else np.ascontiguousarray(t.data, dtype=t.data.dtype.newbyteorder("<"))
        entry: dict[str, Any] = {"name": t.name, "datatype": t.datatype, "shape": list(data.shape)}
        parameters = dict(t.parameters)
        if is_bytes and not binary:
            raise InvalidInput(f"tensor {t.name!r}: BYTES tensors travel only as binary data")
        if binary:
            raw = _pack_bytes(data) if is_bytes else data.tobytes()
            parameters["binary_data_size"] = len(raw)
            chunks.append(raw)
        else:
            entry["data"] = data.flatten().tolist()
        if parameters:
            entry["parameters"] = parameters
        entries.append(entry)
    header[kind] = entries
    if kind == "inputs" and message.requested_outputs:
        header["outputs"] = [{"name": n, "parameters": p} for n, p in message.requested_outputs.items()]
    try:
        text = json.dumps(header, allow_nan=False).encode()
    except ValueError:
        raise InvalidInput("the message holds NaN or infinite values, which JSON cannot carry") from None
    headers = {"Content-Type": "application/json"}
    if chunks:
        headers[HEADER_LENGTH] = str(len(text))
        headers["Content-Type"] = "application/octet-stream"
    return text + b"".join(chunks), headers


def decode_message(body: bytes, header_length: str | int | None, *, kind: str) -> Message:
    """Parse a v2 request (``kind="inputs"``) or response (``kind="outputs"``), validating everything."""
    if header_length is None:
        json_part, binary = body, b""
    else:
        text = str(header_length)
        if not (text.isascii() and text.isdigit()):  # plain digits: no sign, spaces or other numerals
            raise InvalidInput(f"{HEADER_LENGTH} must be a decimal integer, got {text[:40]!r}")
        length = int(text)
        if length > len(body):
            raise InvalidInput(f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
        json_part, binary = body[:length], body[length:]
    _check_depth(json_part)
    try:
        header = json.loads(json_part)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"malformed JSON: {str(exc)[:200]}") from None
    if not isinstance(header, dict) or not isinstance(header.get(kind), list):
        raise InvalidInput(f"expected a JSON object with an {kind!r} list")
    for key in ("parameters",):
        if header.get(key) is not None and not isinstance(header[key], dict):
            raise InvalidInput(f"{key!r} must be an object")
    if kind == "inputs" and header.get("outputs") is not None and not isinstance(header["outputs"], list):
        raise InvalidInput("'outputs' must be a list")
    for key in ("id", "model_name"):
        if header.get(key) is not None and not isinstance(header[key], str):
            raise InvalidInput(f"{key!r} must be a string")
    tensors, offset = [], 0
    for i, entry in enumerate(header[kind]):
        tensor, offset = _decode_tensor(entry, i, binary, offset, kind)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data follow the tensors unclaimed")
    requested = {}
    for out in header.get("outputs") or [] if kind == "inputs" else []:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidInput("each requested output needs a 'name'")
        if out.get("parameters") is not None and not isinstance(out["parameters"], dict):
            raise InvalidInput(f"output {out['name']!r}: 'parameters' must be an object")
        requested[out["name"]] = dict(out.get("parameters") or {})
    return Message(
        tensors,
        parameters=dict(header.get("parameters") or {}),
        id=header.get("id"),
        model_name=header.get("model_name"),
        requested_outputs=requested,
    )


def _check_depth(text: bytes) -> None:
    """Refuse JSON nested deeper than MAX_DEPTH before parsing it (the parser recurses per level)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise InvalidInput(f"the JSON is nested more than {MAX_DEPTH} levels deep")
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_tensor(entry: Any, i: int, binary: bytes, offset: int, kind: str) -> tuple[TensorData, int]:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{kind}[{i}] must be an object")
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    label = f"{kind}[{i}] ({str(name)[:40]!r})"
    if not isinstance(name, str):
        raise InvalidInput(f"{kind}[{i}] needs a string 'name'")
    if not isinstance(datatype, str) or (datatype not in DATATYPES and datatype != "BYTES"):
        raise InvalidInput(
            f"{label}: unsupported datatype {str(datatype)[:40]!r}; expected BYTES or one of {sorted(DATATYPES)}"
        )
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_int(d) and d >= 0 for d in shape):
        raise InvalidInput(f"{label}: shape must be a list of at most 8 non-negative integers, got {str(shape)[:80]}")
    count = math.prod(shape)  # exact: Python integers do not wrap
    if entry.get("parameters") is not None and not isinstance(entry["parameters"], dict):
        raise InvalidInput(f"{label}: 'parameters' must be an object")
    parameters = dict(entry.get("parameters") or {})
    size = parameters.pop("binary_data_size", None)
    if size is not None and (not _is_int(size) or size < 0):
        raise InvalidInput(f"{label}: binary_data_size must be a non-negative integer, got {str(size)[:40]}")
    if datatype == "BYTES":
        if size is None or offset + size > len(binary):
            raise InvalidInput(f"{label}: BYTES need binary data of the declared binary_data_size")
        if count > size // 4:  # every element takes at least its 4-byte length
            raise InvalidInput(f"{label}: shape {shape} holds more elements than {size} bytes of BYTES can")
        array = _unpack_bytes(binary[offset : offset + size], count, label).reshape(shape)
        return TensorData(name, array, parameters), offset + size
    dtype = DATATYPES[datatype]
    if size is not None:
        expected = count * dtype.itemsize
        if size != expected:
            raise InvalidInput(f"{label}: binary_data_size {size} does not match shape {shape} x {datatype}")
        if offset + size > len(binary):
            raise InvalidInput(f"{label}: binary data is truncated ({len(binary) - offset} of {size} bytes)")
        array = np.frombuffer(binary, dtype=dtype, count=count, offset=offset).reshape(shape)
        offset += size
    else:
        if "data" not in entry:
            raise InvalidInput(f"{label}: no 'data' and no binary_data_size")
        array = _json_array(entry["data"], dtype, shape, label)
    return TensorData(name, array, parameters), offset


def _json_array(data: Any, dtype: np.dtype, shape: list[int], label: str) -> np.ndarray:
    """JSON numbers as an array of ``dtype``: refused, not wrapped or overflowed, when they do not fit."""
    try:
        values = np.asarray(data, dtype=np.float64 if dtype.kind == "f" else object)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{label}: data is not a list of numbers ({str(exc)[:100]})") from None
    if values.size != math.prod(shape):
        raise InvalidInput(f"{label}: {values.size} values do not fit shape {shape}")
    if dtype.kind == "f":
        if not np.isfinite(values).all():
            raise InvalidInput(f"{label}: data holds NaN or infinite values")
        if dtype != np.float64 and (np.abs(values) > np.finfo(dtype).max).any():
            raise InvalidInput(f"{label}: data is out of the range of {dtype}")
        return values.astype(dtype).reshape(shape)
    flat = values.reshape(-1)
    if not all(_is_int(v) or (dtype.kind == "b" and isinstance(v, bool)) for v in flat):
        raise InvalidInput(f"{label}: {dtype} data must be integers")
    info = np.iinfo(dtype) if dtype.kind != "b" else None
    if info is not None and any(v < info.min or v > info.max for v in flat):
        raise InvalidInput(f"{label}: data is out of the range of {dtype} ({info.min}..{info.max})")
    return np.asarray([int(v) for v in flat], dtype=dtype).reshape(shape)


def _pack_bytes(data: np.ndarray) -> bytes:
    """BYTES elements as the binary extension wants them: a little-endian uint32 length, then the bytes."""
    return b"".join(len(item).to_bytes(4, "little") + bytes(item) for item in data.flat)


def _unpack_bytes(raw: bytes, count: int, label: str) -> np.ndarray:
    items, offset = [], 0
    for _ in range(count):
        if offset + 4 > len(raw):
            raise InvalidInput(f"{label}: BYTES data is truncated")
        length = int.from_bytes(raw[offset : offset + 4], "little")
        if offset + 4 + length > len(raw):
            raise InvalidInput(f"{label}: BYTES element of {length} bytes is truncated")
        items.append(raw[offset + 4 : offset + 4 + length])
        offset += 4 + length
    if offset != len(raw):
        raise InvalidInput(f"{label}: {len(raw) - offset} stray bytes after {count} BYTES elements")
    array = np.empty(count, dtype=object)
    array[:] = items
    return array


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (zstd, gzip, deflate). Decompression is bounded: a small body that
    would expand past ``limit`` bytes is refused without being expanded."""
    if encoding in (None, "", "identity"):
        return body
    try:
        if encoding == "zstd":
            # Fed in small pieces: a zstd block expands to at most 128 KB, so 64 bytes of input can never
            # take the output far past the limit before it is checked (a tiny "bomb" stays bounded).
            inflater, parts, size = zstandard.ZstdDecompressor().decompressobj(), [], 0
            for start in range(0, len(body), 64):
                part = inflater.decompress(body[start : start + 64])
                parts.append(part)
                size += len(part)
                if size > limit:
                    raise PayloadTooLarge(f"the body decompresses to more than the limit of {limit} bytes")
                if inflater.eof:
                    break
            out, complete = b"".join(parts), inflater.eof
            rest = inflater.unused_data + body[start + 64 :] if inflater.eof else b""
        elif encoding in ("gzip", "deflate"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            out = inflater.decompress(body, limit + 1)
            if len(out) > limit:
                raise PayloadTooLarge(f"the body decompresses to more than the limit of {limit} bytes")
            complete, rest = inflater.eof, inflater.unused_data
        else:
            raise UnsupportedEncoding(f"unsupported Content-Encoding {str(encoding)[:40]!r}; use zstd, gzip or deflate")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise InvalidInput(f"body is not valid {encoding}: {exc}") from None
    if not complete:
        raise InvalidInput(f"the {encoding} body is truncated")
    if rest:
        raise InvalidInput(f"{len(rest)} bytes follow the {encoding} data (one frame, nothing after it)")
    return out


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(body)
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6)
    if encoding == "deflate":
        return zlib.compress(body, 6)
    raise UnsupportedEncoding(f"unsupported encoding {encoding!r}; use zstd, gzip or deflate")
