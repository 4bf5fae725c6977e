"""The one frame resize of the stack: conversion, training and inference all go through it,
so a policy is fed exactly the pixels it was trained on."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def resize_frames(images: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(..., H0, W0, 3)`` uint8 → ``(..., 3, H, W)`` uint8 at ``size`` (antialiased, i.e. area-averaged
    when shrinking)."""
    x = torch.as_tensor(np.asarray(images))
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float()
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).reshape(*lead, 3, *size)


def resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """One ``(H0, W0, 3)`` uint8 frame → ``(H, W, 3)`` at ``size`` (None: unchanged)."""
    if size is None or image.shape[:2] == tuple(size):
        return image
    return resize_frames(image, size).permute(1, 2, 0).numpy()
