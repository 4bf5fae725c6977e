"""Episodes → training samples: frames of all cameras tiled along time, the action chunk, proprio.

A sample starts at frame ``t``: the lead camera's frame ``t`` (if the config has one),
then per camera frame ``t`` (the condition, also denoised, as in SVD) and frames
``t + stride * j`` for ``j = 1..future_frames`` (clamped to the last frame). Frames are
cut to the config's crops and resized to the model's image size once, at load time.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from video_policy_ros.data.episode import Episode, EpisodeError
from video_policy_ros.data.frames import resize_frames
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.normalization import ActionNormalizer, Trajectory


def to_model_range(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` → float ``[-1, 1]``."""
    return frames.float() / 127.5 - 1.0


def colour_jitter(frames: torch.Tensor, num_cameras: int, cfg_train, generator: torch.Generator | None = None,
                  lead_camera: int | None = None) -> torch.Tensor:
    """Random brightness, contrast, saturation and hue, identical across the frames of one camera.

    ``frames`` ``(B, F, 3, H, W)`` in [-1, 1] with cameras tiled along F (after a lead frame of
    camera index ``lead_camera``, if given) → same shape. Factors are drawn per (sample,
    camera), so the condition frame and the future frames of a camera stay consistent
    while cameras differ.
    """
    if lead_camera is not None:  # the lead frame duplicates its camera's current frame: jitter it alike
        out = colour_jitter(frames[:, 1:], num_cameras, cfg_train, generator)
        per_cam = out.shape[1] // num_cameras
        return torch.cat([out[:, lead_camera * per_cam][:, None], out], dim=1)
    b, per_cam = frames.shape[0], frames.shape[1] // num_cameras
    x = frames.reshape(b, num_cameras, per_cam, *frames.shape[2:])

    def factor(strength: float) -> torch.Tensor:
        u = torch.rand(b, num_cameras, 1, 1, 1, 1, generator=generator).to(frames.device)
        return 1.0 + strength * (2 * u - 1)

    x = (x + 1) / 2 * factor(cfg_train.jitter_brightness)  # in [0, 1] so that brightness scales
    mean = x.mean(dim=(2, 3, 4, 5), keepdim=True)
    x = (x - mean) * factor(cfg_train.jitter_contrast) + mean
    grey = x.mean(dim=3, keepdim=True)
    x = (x - grey) * factor(cfg_train.jitter_saturation) + grey
    if cfg_train.jitter_hue:
        x = rotate_hue(x, (factor(cfg_train.jitter_hue) - 1.0) * 2 * math.pi)
    return (x.clamp(0, 1) * 2 - 1).reshape(frames.shape)


def rotate_hue(rgb: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of ``(..., 3, H, W)`` RGB by ``angle`` radians (broadcast ``(..., 1, 1, 1)``):
    a rotation of the chroma plane of YIQ, which keeps the luma."""
    yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], dtype=rgb.dtype,
                       device=rgb.device)
    y, i, q = torch.einsum("ij,...jhw->...ihw", yiq, rgb).unbind(-3)
    cos, sin = angle.cos()[..., 0, 0, 0], angle.sin()[..., 0, 0, 0]
    cos, sin = cos[..., None, None], sin[..., None, None]
    rotated = torch.stack([y, i * cos - q * sin, i * sin + q * cos], dim=-3)
    return torch.einsum("ij,...jhw->...ihw", torch.linalg.inv(yiq), rotated)


class EpisodeDataset(Dataset):
    """Samples of ``{frames (F, 3, H, W) uint8, actions (K, 7), has_actions, has_video, proprio (7,), instruction}``.

    ``normalizer`` may be None (video-only training, or until it is fitted on
    :meth:`trajectories`); samples without actions carry zeros and ``has_actions = False``. Samples of a
    relabelled episode (:class:`Episode`) have ``has_video = False``: their frames condition, never teach.
    ``require_actions`` / ``require_video`` leave out the episodes that would teach nothing.
    """

    def __init__(self, files: list[Path], cfg: VideoPolicyConfig, normalizer: ActionNormalizer | None,
                 require_actions: bool = False, require_video: bool = False) -> None:
        self.cfg, self.normalizer = cfg, normalizer
        self.episodes: list[dict] = []
        for path in files:
            ep = Episode.load(path)
            missing = [c for c in cfg.cameras if c not in ep.frames]
            if missing:
                raise EpisodeError(f"{path}: cameras {missing} missing (episode has {list(ep.frames)}, "
                                   f"config wants {list(cfg.cameras)})")
            if (require_actions and not ep.has_actions) or (require_video and ep.relabelled):
                continue
            if len(ep) < 2:
                continue
            # (cams, T, 3, H, W)
            frames = torch.stack([resize_frames(ep.frames[c], cfg.image_size, cfg.crops.get(c)) for c in cfg.cameras])
            labels = (ep.expert_poses, ep.expert_gripper) if ep.expert_poses is not None else None
            self.episodes.append({"frames": frames, "poses": ep.tcp_poses, "gripper": ep.gripper, "labels": labels,
                                  "instruction": ep.instruction, "relabelled": ep.relabelled})
        if not self.episodes:
            needs = (["episodes with actions"] if require_actions else []) + (
                ["episodes whose frames show their own actions (not relabelled ones)"] if require_video else [])
            raise EpisodeError(f"no usable episodes among {len(files)} files"
                               + (f" (this mode needs {' and '.join(needs)})" if needs else ""))
        self.index = [(i, t) for i, e in enumerate(self.episodes) for t in range(e["frames"].shape[1] - 1)]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        e_idx, t = self.index[i]
        ep, cfg = self.episodes[e_idx], self.cfg
        length = ep["frames"].shape[1]
        times = np.minimum(t + cfg.frame_stride * np.arange(cfg.frames_per_camera), length - 1)
        frames = ep["frames"][:, times].flatten(0, 1)  # (cams * Tc, 3, H, W), camera by camera
        if cfg.lead_camera is not None:
            frames = torch.cat([ep["frames"][cfg.cameras.index(cfg.lead_camera), t][None], frames])
        has_actions = ep["poses"] is not None and self.normalizer is not None
        actions = np.zeros((cfg.action.horizon, 7), np.float32)
        proprio = np.zeros(7, np.float32)
        if has_actions:
            actions = self.normalizer.encode_chunk(ep["poses"], ep["gripper"], ep["labels"], t=t, horizon=cfg.action.horizon)
            proprio = self.normalizer.encode_proprio(ep["poses"][t], ep["gripper"][t])[0]
        return {"frames": frames, "actions": torch.from_numpy(actions), "has_actions": has_actions,
                "has_video": not ep["relabelled"], "proprio": torch.from_numpy(proprio), "instruction": ep["instruction"],
                "episode": e_idx, "t": t}

    def trajectories(self) -> list[Trajectory]:
        return [Trajectory(e["poses"], e["gripper"], e["labels"]) for e in self.episodes if e["poses"] is not None]
