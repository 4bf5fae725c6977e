"""The Video Policy behind the inference node's :class:`Policy` port.

Everything the ``nn.Module`` does not own lives here: camera order, image resizing,
action (de)normalisation, delta → absolute TCP targets, the chunk's timing.

    policy = VideoPolicy.from_checkpoint("models/video_policy_tiny", device="auto")
    output = policy.predict(observation)   # PolicyOutput(ActionChunk of absolute targets, frames?)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video_policy_ros.model.checkpoint import CheckpointError, load_checkpoint
from video_policy_ros.model.dataset import resize_frames, to_model_range
from video_policy_ros.model.evaluate import to_uint8
from video_policy_ros.policies.base import Policy
from video_policy_ros.types import ActionChunk, Observation, PolicyOutput


class VideoPolicy(Policy):
    """Observation → chunk of absolute TCP targets (fr3_link0) + gripper, from a checkpoint folder.

    ``num_steps`` / ``guidance`` override the checkpoint's sampler settings; ``return_frames``
    adds the decoded predicted frames (uint8 ``(T, H, W, 3)`` per camera, model resolution);
    ``expected_cameras`` makes loading fail early when the node's cameras differ.
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", num_steps: int | None = None,
                 guidance: float | None = None, return_frames: bool = False, seed: int = 0,
                 expected_cameras: tuple[str, ...] | None = None) -> None:
        self.device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                                   "cpu" if device == "auto" else device)
        loaded = load_checkpoint(checkpoint, self.device, expected_cameras, require_actions=True)
        self.model, self.config, self.meta, self.normalizer = loaded.model, loaded.config, loaded.meta, loaded.normalizer
        self.checkpoint = Path(checkpoint)
        self.camera_names = self.config.cameras
        self.num_steps = self.config.edm.num_steps if num_steps is None else num_steps
        self.guidance = self.config.edm.guidance if guidance is None else guidance
        self.return_frames = return_frames
        self.seed = seed
        self._generator = torch.Generator(self.device).manual_seed(seed)
        self._text_cache: tuple[str, torch.Tensor] | None = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path, **kwargs) -> "VideoPolicy":
        return cls(checkpoint, **kwargs)

    @property
    def dt(self) -> float:
        return self.meta.dt

    @property
    def description(self) -> str:
        c = self.config
        return (f"VideoPolicy {self.checkpoint.name}: cams {list(c.cameras)}, {c.image_size[0]}x{c.image_size[1]}, "
                f"{c.action.representation} actions, {self.num_steps} steps, guidance {self.guidance}, {self.device}")

    def reset(self) -> None:
        self._generator.manual_seed(self.seed)

    def _text(self, instruction: str) -> torch.Tensor:
        # The instruction rarely changes between calls: encode it once.
        if self._text_cache is None or self._text_cache[0] != instruction:
            self._text_cache = (instruction, self.model.encode_text([instruction]))
        return self._text_cache[1]

    @torch.no_grad()
    def predict(self, observation: Observation) -> PolicyOutput:
        missing = [c for c in self.camera_names if c not in observation.frames]
        if missing:
            raise CheckpointError(f"observation lacks cameras {missing}; the checkpoint needs {list(self.camera_names)}")
        current = np.stack([observation.frames[c].image for c in self.camera_names])  # (cams, H0, W0, 3)
        images = to_model_range(resize_frames(current, self.config.image_size)).to(self.device)[None]
        cond = self.model.encode_condition(images)
        proprio = None
        if self.config.proprio:
            p = self.normalizer.encode_proprio(observation.tcp_pose, observation.gripper)
            proprio = torch.from_numpy(p).to(self.device)
        latents, actions = self.model.sample(cond, self._text(observation.instruction), proprio, self.num_steps,
                                             self.guidance, generator=self._generator)
        poses, gripper = self.normalizer.decode_chunk(actions[0].float().cpu().numpy(), observation.tcp_pose)
        chunk = ActionChunk(stamp=observation.stamp, dt=self.meta.dt, poses=poses, gripper=gripper)
        frames = None
        if self.return_frames:
            video = to_uint8(self.model.decode(latents)[0])  # (F, H, W, 3), cameras tiled
            t = self.config.frames_per_camera
            frames = {c: video[i * t:(i + 1) * t] for i, c in enumerate(self.camera_names)}
        return PolicyOutput(chunk=chunk, predicted_frames=frames)
