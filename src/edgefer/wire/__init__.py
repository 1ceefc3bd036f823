"""What travels between the device and the cloud, shared by both sides and by nothing else.

v2 (Open Inference Protocol) messages with the binary tensor data extension and compression
(:mod:`.protocol`), feature maps in FP32, FP16 or INT8 (:mod:`.codec`), encoded face images
(:mod:`.images`), the cloud's model names (:mod:`.names`) and the typed errors each side raises
for the other's mistakes (:mod:`.errors`). Nothing here imports a web framework or a model.
"""

from .codec import CODECS, decode_feature, encode_feature
from .errors import InvalidInput, ModelNotFound, PayloadTooLarge, ServingError, Unauthorized, UnsupportedEncoding
from .images import ImageLimits, decode_image, encode_image
from .names import FULL, FULL_LARGE, parse_model_name, split_model, suffix_model
from .protocol import HEADER_LENGTH, Message, TensorData, compress, decode_message, decompress, encode_message

__all__ = [
    "CODECS",
    "FULL",
    "FULL_LARGE",
    "HEADER_LENGTH",
    "ImageLimits",
    "InvalidInput",
    "Message",
    "ModelNotFound",
    "PayloadTooLarge",
    "ServingError",
    "TensorData",
    "Unauthorized",
    "UnsupportedEncoding",
    "compress",
    "decode_feature",
    "decode_image",
    "decode_message",
    "decompress",
    "encode_feature",
    "encode_image",
    "encode_message",
    "parse_model_name",
    "split_model",
    "suffix_model",
]
