"""One evaluation frame: the live camera image beside the policy's latest predicted video."""

from __future__ import annotations

import math

import numpy as np


def prediction_grid(filmstrip: np.ndarray, frames: int, height: int, width: int) -> np.ndarray:
    """A ``frames``-long filmstrip (frames left to right) → its frames in a grid on a ``(height, width)`` panel.

    Frames are scaled by an integer factor (nearest neighbour: pixels stay honest) and
    centred on a black panel.
    """
    strip_h, strip_w = filmstrip.shape[:2]
    if frames < 1 or strip_w % frames:
        raise ValueError(f"a filmstrip {strip_w} px wide cannot hold {frames} equal frames")
    frame_w = strip_w // frames
    cols = math.ceil(math.sqrt(frames))
    rows = math.ceil(frames / cols)
    scale = max(1, min(height // (rows * strip_h), width // (cols * frame_w)))
    tiles = [filmstrip[:, i * frame_w:(i + 1) * frame_w].repeat(scale, 0).repeat(scale, 1) for i in range(frames)]
    tile_h, tile_w = tiles[0].shape[:2]
    grid = np.zeros((rows * tile_h, cols * tile_w, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    grid = grid[:height, :width]
    panel = np.zeros((height, width, 3), np.uint8)
    top, left = (height - grid.shape[0]) // 2, (width - grid.shape[1]) // 2
    panel[top:top + grid.shape[0], left:left + grid.shape[1]] = grid
    return panel


def side_by_side(camera: np.ndarray, filmstrip: np.ndarray | None, frames: int | None) -> np.ndarray:
    """``camera`` (H, W, 3), then a panel of the same size with the predicted frames (black until
    the first prediction). Without ``frames`` (a policy that predicts no video) the camera alone."""
    if frames is None:
        return camera
    h, w = camera.shape[:2]
    panel = np.zeros_like(camera) if filmstrip is None else prediction_grid(filmstrip, frames, h, w)
    return np.concatenate([camera, panel], axis=1)
