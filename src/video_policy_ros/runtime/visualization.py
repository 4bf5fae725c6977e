"""Turns predicted video into something a person can look at in RViz."""

from __future__ import annotations

import numpy as np


def filmstrip(frames: np.ndarray, min_height: int = 96) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 → one ``(H', T * W', 3)`` image, frames left to right.

    Small model-resolution frames are enlarged by an integer factor (nearest
    neighbour, so pixels stay honest) until they are at least ``min_height`` tall.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got {frames.shape}")
    scale = max(1, -(-min_height // frames.shape[1]))
    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    return np.ascontiguousarray(np.concatenate(list(big), axis=1))
