"""Observation → model inputs shared by the learned policies."""

from __future__ import annotations

import numpy as np
import torch

from video_policy_ros.model.checkpoint import CheckpointError
from video_policy_ros.data.frames import resize_frames
from video_policy_ros.model.dataset import to_model_range
from video_policy_ros.types import Observation


def camera_images(observation: Observation, camera_names: tuple[str, ...], image_size: tuple[int, int]) -> torch.Tensor:
    """The current frame of each camera, in the checkpoint's order and size: ``(1, cams, 3, H, W)`` in [-1, 1]."""
    missing = [c for c in camera_names if c not in observation.frames]
    if missing:
        raise CheckpointError(f"observation lacks cameras {missing}; the checkpoint needs {list(camera_names)}")
    current = np.stack([observation.frames[c].image for c in camera_names])  # (cams, H0, W0, 3)
    return to_model_range(resize_frames(current, image_size))[None]
