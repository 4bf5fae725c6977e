"""The behaviour-cloning baseline behind the inference node's :class:`Policy` port.

Like the Video Policy wrapper, everything the ``nn.Module`` does not own lives here:
camera order, resizing, proprio and action (de)normalisation, delta → absolute targets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video_policy_ros.model.bc import load_bc, word_ids
from video_policy_ros.model.checkpoint import CheckpointError
from video_policy_ros.policies.base import Policy
from video_policy_ros.policies.inputs import camera_images
from video_policy_ros.types import FINGERS_CLOSED, FINGERS_OPEN, ActionChunk, Observation, PolicyOutput

# The demonstrations record the *measured* finger position: 0.04 open, about 0.03 while
# holding a 6 cm cube, 0 closed on nothing. Commanding a regressed value in between would
# drop a held cube, and a command that flips while the fingers still move blocks franky's
# gripper connection. So the command is binary, like the paper's gripper action, one per
# chunk (from the steps that will run before the next chunk), with hysteresis: it opens
# only above OPEN_ABOVE and closes only below CLOSE_BELOW.
OPEN_ABOVE, CLOSE_BELOW = 0.037, 0.033


class BCPolicy(Policy):
    def __init__(self, checkpoint: str | Path, expected_cameras: tuple[str, ...] | None = None) -> None:
        self.model, self.normalizer = load_bc(checkpoint)
        self.cfg = self.model.cfg
        self.checkpoint = Path(checkpoint)
        self.camera_names = self.cfg.cameras
        self._fingers_open: bool | None = None  # the gripper command in force (None: none yet)
        if expected_cameras is not None and tuple(expected_cameras) != self.cfg.cameras:
            raise CheckpointError(f"{checkpoint} was trained on cameras {list(self.cfg.cameras)} but the node "
                                  f"has {list(expected_cameras)}; set cameras: {list(self.cfg.cameras)}")

    def reset(self) -> None:
        self._fingers_open = None

    def _gripper_command(self, predicted: np.ndarray) -> float:
        level = float(np.mean(predicted[:max(1, len(predicted) // 2)]))
        if self._fingers_open is None:
            self._fingers_open = level >= (OPEN_ABOVE + CLOSE_BELOW) / 2
        elif self._fingers_open and level < CLOSE_BELOW:
            self._fingers_open = False
        elif not self._fingers_open and level > OPEN_ABOVE:
            self._fingers_open = True
        return FINGERS_OPEN if self._fingers_open else FINGERS_CLOSED

    @property
    def description(self) -> str:
        c = self.cfg
        return (f"BC baseline {self.checkpoint.name}: cams {list(c.cameras)}, {c.image_size[0]}x{c.image_size[1]}, "
                f"{c.horizon}-step chunks, {c.trained_steps} training steps")

    @torch.no_grad()
    def predict(self, observation: Observation) -> PolicyOutput:
        images = camera_images(observation, self.camera_names, self.cfg.image_size, self.cfg.crops)
        proprio = torch.from_numpy(self.normalizer.encode_proprio(observation.tcp_pose, observation.gripper))
        actions = self.model(images, proprio, word_ids(self.cfg, [observation.instruction]))
        poses, gripper = self.normalizer.decode_chunk(actions[0].numpy(), observation.tcp_pose)
        gripper = np.full(len(gripper), self._gripper_command(gripper))
        return PolicyOutput(chunk=ActionChunk(stamp=observation.stamp, dt=self.cfg.dt, poses=poses, gripper=gripper))
