"""Observation → model inputs shared by the learned policies."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from video_policy_ros.data.frames import Crop, resize_frames
from video_policy_ros.model.checkpoint import CheckpointError
from video_policy_ros.model.dataset import to_model_range
from video_policy_ros.types import Observation


def camera_images(observation: Observation, camera_names: tuple[str, ...], image_size: tuple[int, int],
                  crops: Mapping[str, Crop]) -> torch.Tensor:
    """The current frame of each camera, in the checkpoint's order, crops and size: ``(1, cams, 3, H, W)`` in [-1, 1]."""
    missing = [c for c in camera_names if c not in observation.frames]
    if missing:
        raise CheckpointError(f"observation lacks cameras {missing}; the checkpoint needs {list(camera_names)}")
    # One camera at a time: cameras may differ in resolution, and each has its own crop.
    images = [resize_frames(observation.frames[c].image, image_size, crops.get(c)) for c in camera_names]
    return to_model_range(torch.stack(images))[None]
