"""RGB frames ↔ the bytes of a sensor_msgs/CompressedImage (JPEG or PNG, image_transport naming)."""

from __future__ import annotations

import cv2
import numpy as np

ENCODINGS = ("jpeg", "png")


def compressed_format(source_encoding: str, encoding: str) -> str:
    """image_transport's ``format`` field, e.g. ``"rgb8; jpeg compressed bgr8"``."""
    return f"{source_encoding}; {encoding} compressed bgr8"


def encode_rgb(image: np.ndarray, encoding: str, jpeg_quality: int = 90) -> bytes:
    """``(H, W, 3)`` RGB uint8 → JPEG/PNG bytes (stored as BGR, as OpenCV and image_transport do)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"image encoding must be one of {ENCODINGS}, got '{encoding}'")
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if encoding == "jpeg" else []
    ok, data = cv2.imencode(f".{encoding}", np.ascontiguousarray(image[..., ::-1]), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode a {image.shape} image as {encoding}")
    return data.tobytes()


def decode_to_rgb(data: np.ndarray | bytes) -> np.ndarray | None:
    """JPEG/PNG bytes → ``(H, W, 3)`` RGB uint8, or None when they do not decode."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return None if bgr is None else np.ascontiguousarray(bgr[..., ::-1])
