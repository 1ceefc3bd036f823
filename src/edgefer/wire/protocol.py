"""Open Inference Protocol (KServe v2) tensors over HTTP/REST, with the binary tensor data extension.

A message (request or response) is a JSON object, optionally followed by the raw bytes of the
tensors whose ``parameters.binary_data_size`` is set, in order; the JSON's length is then sent in
the ``Inference-Header-Content-Length`` header. Binary data is little-endian, row-major. The same
encode/decode functions serve the server and our edge client, so both sides agree by construction.
"""

from __future__ import annotations

import gzip
import io
import json
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
    text = json.dumps(header).encode()
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
        try:
            length = int(header_length)
        except ValueError:
            raise InvalidInput(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
        if not 0 <= length <= len(body):
            raise InvalidInput(f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
        json_part, binary = body[:length], body[length:]
    try:
        header = json.loads(json_part)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"malformed JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get(kind), list):
        raise InvalidInput(f"expected a JSON object with an {kind!r} list")
    tensors, offset = [], 0
    for i, entry in enumerate(header[kind]):
        tensor, offset = _decode_tensor(entry, i, binary, offset, kind)
        tensors.append(tensor)
    if offset != len(binary):
        raise InvalidInput(f"{len(binary) - offset} bytes of binary data follow the tensors unclaimed")
    requested = {}
    for out in header.get("outputs", []) if kind == "inputs" else []:
        if not isinstance(out, dict) or not isinstance(out.get("name"), str):
            raise InvalidInput("each requested output needs a 'name'")
        requested[out["name"]] = dict(out.get("parameters") or {})
    return Message(
        tensors,
        parameters=dict(header.get("parameters") or {}),
        id=header.get("id"),
        model_name=header.get("model_name"),
        requested_outputs=requested,
    )


def _decode_tensor(entry: Any, i: int, binary: bytes, offset: int, kind: str) -> tuple[TensorData, int]:
    if not isinstance(entry, dict):
        raise InvalidInput(f"{kind}[{i}] must be an object")
    name, datatype, shape = entry.get("name"), entry.get("datatype"), entry.get("shape")
    label = f"{kind}[{i}] ({name!r})"
    if not isinstance(name, str):
        raise InvalidInput(f"{kind}[{i}] needs a string 'name'")
    if datatype not in DATATYPES and datatype != "BYTES":
        raise InvalidInput(f"{label}: unsupported datatype {datatype!r}; expected BYTES or one of {sorted(DATATYPES)}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"{label}: shape must be a list of non-negative integers, got {shape!r}")
    count = int(np.prod(shape, dtype=np.int64))
    parameters = dict(entry.get("parameters") or {})
    size = parameters.pop("binary_data_size", None)
    if datatype == "BYTES":
        if not isinstance(size, int) or offset + size > len(binary):
            raise InvalidInput(f"{label}: BYTES need binary data of the declared binary_data_size")
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
        try:
            array = np.asarray(entry["data"], dtype=dtype).reshape(shape)
        except (ValueError, TypeError) as exc:
            raise InvalidInput(f"{label}: data does not fit shape {shape} x {datatype}: {exc}") from None
    return TensorData(name, array, parameters), offset


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
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(body)) as reader:
                out, complete = reader.read(limit + 1), True
        elif encoding in ("gzip", "deflate"):
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
            out = inflater.decompress(body, limit + 1)
            complete = inflater.eof or len(out) > limit
        else:
            raise UnsupportedEncoding(f"unsupported Content-Encoding {encoding!r}; use zstd, gzip or deflate")
    except (zstandard.ZstdError, zlib.error) as exc:
        raise InvalidInput(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the body decompresses to more than the limit of {limit} bytes")
    if not complete:
        raise InvalidInput(f"the {encoding} body is truncated")
    return out


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(body)
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6)
    if encoding == "deflate":
        return zlib.compress(body, 6)
    raise UnsupportedEncoding(f"unsupported encoding {encoding!r}; use zstd, gzip or deflate")
