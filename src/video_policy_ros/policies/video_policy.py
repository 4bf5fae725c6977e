"""The Video Policy behind the inference node's :class:`Policy` port.

Everything the ``nn.Module`` does not own lives here: camera order, image resizing,
action (de)normalisation, delta → absolute TCP targets, the chunk's timing, and which
inference backend (runtime/backends.py) runs the network.

    policy = VideoPolicy("models/video_policy_tiny", backend="onnxruntime")
    output = policy.predict(observation)   # PolicyOutput(ActionChunk of absolute targets, decode_video?)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from video_policy_ros.data.frames import Crop
from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.model.evaluate import to_uint8
from video_policy_ros.policies.base import ChunkTiming, Policy
from video_policy_ros.policies.inputs import camera_images
from video_policy_ros.runtime.backends import BackendSettings, BackendUnavailable, resolve_backend
from video_policy_ros.types import ActionChunk, Observation, PolicyOutput


class VideoPolicy(Policy):
    """Observation → chunk of absolute TCP targets (fr3_link0) + gripper, from a checkpoint folder.

    ``num_steps`` / ``guidance`` override the checkpoint's sampler settings; ``return_frames``
    adds a deferred decoder of the predicted frames (uint8 ``(T, H, W, 3)`` per camera, model
    resolution); ``expected_cameras`` makes loading fail early when the node's cameras differ;
    ``backend`` is a name of runtime/backends.py or ``auto`` (fastest measured here).
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto", num_steps: int | None = None,
                 guidance: float | None = None, return_frames: bool = False, seed: int = 0,
                 expected_cameras: tuple[str, ...] | None = None, backend: str = "torch",
                 settings: BackendSettings | None = None) -> None:
        settings = settings or BackendSettings(device=device)
        self.device = settings.torch_device
        loaded = load_checkpoint(checkpoint, self.device, expected_cameras, require_actions=True)
        self.model, self.config, self.meta, self.normalizer = loaded.model, loaded.config, loaded.meta, loaded.normalizer
        self.checkpoint = Path(checkpoint)
        self.camera_names = self.config.cameras
        self._num_steps = self.config.edm.num_steps if num_steps is None else num_steps
        self.guidance = self.config.edm.guidance if guidance is None else guidance
        settings = dataclasses.replace(settings, guided=self.guidance != 1.0)
        self.sampler = self.config.edm.sampler
        if self.sampler == "decoupled":  # one U-Net pass, then head steps: no exported single-call denoiser graph
            if backend not in ("auto", "torch"):
                raise BackendUnavailable(f"{checkpoint} uses the decoupled sampler, which runs on the torch backend "
                                         f"only (not {backend}); set backend: torch or auto")
            backend = "torch"
        self.backend = resolve_backend(backend, self.model, checkpoint, settings)
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
    def predicted_frame_period_s(self) -> float:
        """Time between predicted frames (frame j is due ``j`` periods after the observation)."""
        return self.config.frame_stride * self.meta.dt

    @property
    def predicted_frame_size(self) -> tuple[int, int]:
        """(H, W) of the predicted frames: the model's resolution."""
        return tuple(self.config.image_size)

    @property
    def predicted_frame_crops(self) -> dict[str, Crop]:
        """camera → the region of its frame that the predicted frames show (a camera absent: the whole frame)."""
        return dict(self.config.crops)

    @property
    def timing(self) -> ChunkTiming:
        return ChunkTiming(self.meta.dt, self.config.action.horizon, self.config.action.execute)

    @property
    def num_steps(self) -> int:
        return self._num_steps

    @num_steps.setter
    def num_steps(self, steps: int) -> None:
        self._num_steps = int(steps)

    @property
    def description(self) -> str:
        c = self.config
        return (f"VideoPolicy {self.checkpoint.name}: cams {list(c.cameras)}, {c.image_size[0]}x{c.image_size[1]}, "
                f"{c.action.representation} actions, {self.sampler} sampler, {self.num_steps} steps, guidance {self.guidance}, "
                f"{self.backend.description}")

    def reset(self) -> None:
        self._generator.manual_seed(self.seed)

    def _text(self, instruction: str) -> torch.Tensor:
        # The instruction rarely changes between calls: encode it once.
        if self._text_cache is None or self._text_cache[0] != instruction:
            with torch.no_grad():
                self._text_cache = (instruction, self.model.encode_text([instruction]))
        return self._text_cache[1]

    @torch.no_grad()
    def predict(self, observation: Observation) -> PolicyOutput:
        images = camera_images(observation, self.camera_names, self.config.image_size, self.config.crops).to(self.device)
        cond = self.model.encode_condition(images, self._generator)  # its noise augmentation: seeded too
        proprio = None
        if self.config.proprio:
            p = self.normalizer.encode_proprio(observation.tcp_pose, observation.gripper)
            proprio = torch.from_numpy(p).to(self.device)
        denoiser = self.backend.denoise if self.sampler == "joint" else None
        latents, actions = self.model.sample(cond, self._text(observation.instruction), proprio, self.num_steps,
                                             self.guidance, generator=self._generator, denoiser=denoiser)
        poses, gripper = self.normalizer.decode_chunk(actions[0].float().cpu().numpy(), observation.tcp_pose)
        chunk = ActionChunk(stamp=observation.stamp, dt=self.meta.dt, poses=poses, gripper=gripper)
        return PolicyOutput(chunk=chunk, decode_video=(lambda: self._decode(latents)) if self.return_frames else None)

    @torch.no_grad()
    def _decode(self, latents: torch.Tensor) -> dict[str, np.ndarray]:
        video = to_uint8(self.backend.decode(latents)[0])  # (F, H, W, 3), cameras tiled
        t = self.config.frames_per_camera
        return {c: video[i * t:(i + 1) * t] for i, c in enumerate(self.camera_names)}
