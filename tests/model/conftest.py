"""Synthetic episodes for the model tests: a square moves across each camera as the TCP moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from video_policy_ros.data.episode import Episode
from video_policy_ros.geometry import quat_multiply, rotvec_to_quat

GRIPPER_DOWN = np.array([1.0, 0.0, 0.0, 0.0])  # xyzw: pi about x, the FR3's usual grasp orientation


def make_episode(seed: int, cameras=("front",), length: int = 24, size: int = 32, actions: bool = True,
                 instruction: str | None = None) -> Episode:
    """Episode ``seed`` moves the TCP along its own direction; each camera shows a square whose
    position follows the TCP, on a background colour that depends on the camera."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    pos = np.array([0.4, 0.0, 0.3]) + 0.005 * t[:, None] * direction
    yaw = 0.02 * t * (1 if seed % 2 else -1)
    quat = quat_multiply(rotvec_to_quat(np.stack([np.zeros(length), np.zeros(length), yaw], -1)),
                    np.broadcast_to(GRIPPER_DOWN, (length, 4)))
    gripper = np.where(t < length // 2, 0.04, 0.0)
    frames = {}
    for c, cam in enumerate(cameras):
        img = np.zeros((length, size, size, 3), np.uint8)
        img[...] = np.array([40 + 60 * c, 80, 120 + 50 * (seed % 2)], np.uint8)
        for k in range(length):
            u = int((size - 8) * k / (length - 1))
            v = int((size - 8) * (0.2 + 0.6 * (seed % 2)))
            img[k, v:v + 8, u:u + 8] = (255, 255 - 40 * c, 0)
        frames[cam] = img
    return Episode(instruction or f"task {seed % 2}", 10.0, frames,
                   np.concatenate([pos, quat], -1) if actions else None, gripper.astype(float) if actions else None)


@pytest.fixture
def episodes_dir(tmp_path: Path):
    """Factory: ``episodes_dir(n, cameras=..., actions=...)`` → folder of ``n`` episode files."""

    def build(n: int = 2, cameras=("front",), actions: bool = True, length: int = 24) -> Path:
        folder = tmp_path / "episodes"
        for i in range(n):
            make_episode(i, cameras, length, actions=actions).save(folder / f"ep_{i:03d}.npz")
        return folder

    return build


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)
