"""The one frame crop-and-resize of the stack: conversion, training and inference all go through it,
so a policy is fed exactly the pixels it was trained on.

A crop is a camera's region of interest, ``(top, left, bottom, right)`` as fractions of the frame's
height and width, so one crop fits a camera at any resolution (a 320x240 stream and its 64x48
recording). It is cut before the resize: a front camera whose lower half is the table keeps the
table's pixels, and a 6 cm cube is then several pixels at 32x32 instead of 2x3."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F

Crop = tuple[float, float, float, float]


def check_crops(crops: Mapping[str, Crop], cameras: tuple[str, ...]) -> None:
    """``ValueError`` naming what is wrong: a crop for an unknown camera, or a box that is empty or leaves the frame."""
    unknown = sorted(set(crops) - set(cameras))
    if unknown:
        raise ValueError(f"crops for cameras {unknown} that are not among cameras {list(cameras)}")
    for camera, (top, left, bottom, right) in crops.items():
        if not (0.0 <= top < bottom <= 1.0 and 0.0 <= left < right <= 1.0):
            raise ValueError(f"crop of camera '{camera}' is {[top, left, bottom, right]}: it must be [top, left, bottom, "
                             "right] as fractions of the frame, with 0 <= top < bottom <= 1 and 0 <= left < right <= 1")


def parse_crop(text: str) -> tuple[str, Crop]:
    """``"front=0.35,0.1,0.95,0.9"`` → ``("front", (0.35, 0.1, 0.95, 0.9))``; ``ValueError`` saying the form."""
    camera, _, box = text.partition("=")
    try:
        crop = tuple(float(v) for v in box.split(","))
    except ValueError:
        crop = ()
    if not camera.strip() or len(crop) != 4:
        raise ValueError(f"crop '{text}' is not CAMERA=TOP,LEFT,BOTTOM,RIGHT (fractions of the frame, e.g. "
                         "front=0.35,0.1,0.95,0.9)")
    return camera.strip(), crop


def _span(start: float, end: float, length: int) -> slice:
    """Fractions of an axis → its indices, at least one."""
    first = min(int(round(start * length)), length - 1)
    return slice(first, max(int(round(end * length)), first + 1))


def _cut(x: torch.Tensor, crop: Crop | None) -> torch.Tensor:
    """``(..., H0, W0)`` → the crop's rows and columns."""
    if crop is None:
        return x
    top, left, bottom, right = crop
    return x[..., _span(top, bottom, x.shape[-2]), _span(left, right, x.shape[-1])]


def resize_frames(images: np.ndarray | torch.Tensor, size: tuple[int, int], crop: Crop | None = None) -> torch.Tensor:
    """``(..., H0, W0, 3)`` uint8 → ``(..., 3, H, W)`` uint8: the ``crop`` (None: the whole frame) at ``size``
    (antialiased, i.e. area-averaged when shrinking)."""
    x = torch.as_tensor(np.asarray(images))
    lead = x.shape[:-3]
    x = _cut(x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2), crop).float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).reshape(*lead, 3, *size)


def resize(image: np.ndarray, size: tuple[int, int] | None, crop: Crop | None = None) -> np.ndarray:
    """One ``(H0, W0, 3)`` uint8 frame → ``(H, W, 3)``: the ``crop`` at ``size`` (size None: unchanged, uncropped)."""
    if size is None or (crop is None and image.shape[:2] == tuple(size)):
        return image
    return resize_frames(image, size, crop).permute(1, 2, 0).numpy()
