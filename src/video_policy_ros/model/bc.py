"""Behaviour-cloning baseline: a small ResNet per camera, spatial-softmax keypoints, an MLP head.

The same observation as the Video Policy (each camera's current frame, the TCP pose
and gripper, the instruction) → the same action chunk (``(K, 7)`` normalised by
:class:`ActionNormalizer`), regressed directly instead of denoised with a video.

    model = BCModel(BCConfig(vocabulary=("touch", "put", "red", ...)))
    actions = model(images, proprio, words)   # (B, cams, 3, H, W) in [-1, 1], (B, 7), (B, L) → (B, K, 7)

Checkpoint folder: ``bc_config.json`` (config, vocabulary, dt, training facts),
``normalization.json``, ``model.safetensors``.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from safetensors.torch import save_file
from torch import nn

from video_policy_ros.data.frames import Crop, check_crops
from video_policy_ros.model.checkpoint import CheckpointError, load_weights
from video_policy_ros.model.normalization import ActionNormalizer

CONFIG, NORMALIZATION, WEIGHTS = "bc_config.json", "normalization.json", "model.safetensors"
_UNKNOWN_WORD = 0  # index of words outside the vocabulary (and padding)


class BCConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: tuple[str, ...] = Field(("front", "wrist"), description="cameras, in the order the model reads them")
    image_size: tuple[int, int] = Field((48, 64), description="(H, W) the frames are resized to")
    crops: dict[str, Crop] = Field(default_factory=dict, description="camera → its region of interest, "
                                   "[top, left, bottom, right] fractions cut before the resize (data/frames.py)")
    channels: tuple[int, ...] = Field((16, 32, 64), description="ResNet stage widths (multiples of 8); the grid "
                                      "is halved by the stem and by every stage but the last")
    hidden: int = Field(512, ge=16, description="MLP head width")
    word_dim: int = Field(32, ge=4, description="instruction word embedding width")
    vocabulary: tuple[str, ...] = Field((), description="instruction words seen in training (others are unknown)")
    horizon: int = Field(16, ge=1, le=128, description="action steps per chunk")
    dt: float = Field(0.1, gt=0, description="seconds between action steps (1 / the episodes' fps)")
    trained_steps: int = Field(0, ge=0, description="optimiser steps this checkpoint was trained for")
    data_fingerprint: str = Field("", description="content hash of the training episodes")

    @model_validator(mode="after")
    def _crops_of_its_cameras(self) -> "BCConfig":
        check_crops(self.crops, self.cameras)
        return self


def words(instruction: str) -> list[str]:
    return re.findall(r"[a-z]+", instruction.lower())


def word_ids(cfg: BCConfig, instructions: list[str], length: int = 12) -> torch.Tensor:
    """``B`` instructions → ``(B, length)`` word indices (1 + vocabulary index; 0 unknown/padding)."""
    index = {w: i + 1 for i, w in enumerate(cfg.vocabulary)}
    ids = torch.zeros(len(instructions), length, dtype=torch.long)
    for row, text in enumerate(instructions):
        for col, word in enumerate(words(text)[:length]):
            ids[row, col] = index.get(word, _UNKNOWN_WORD)
    return ids


class _ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(8, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(8, c_out)
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.norm1(self.conv1(x)))
        return F.relu(self.norm2(self.conv2(y)) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """``(B, C, H, W)`` feature maps → ``(B, 2C)`` expected (x, y) of each channel, in [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        attention = x.flatten(2).softmax(dim=-1).reshape(b, c, h, w)
        ys = torch.linspace(-1, 1, h, device=x.device)
        xs = torch.linspace(-1, 1, w, device=x.device)
        return torch.cat([(attention.sum(2) * xs).sum(-1), (attention.sum(3) * ys).sum(-1)], dim=1)


class ImageEncoder(nn.Module):
    """``(B, 3, H, W)`` → ``(B, 2 * channels[-1])`` keypoints on an ``(H/8, W/8)`` grid.

    The stem and every stage but the last halve the grid (a CPU budget: full-resolution
    convolutions cost most and add little); the instruction's FiLM on the last feature
    map picks what the keypoints look at.
    """

    def __init__(self, cfg: BCConfig) -> None:
        super().__init__()
        c0 = cfg.channels[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, 2, 1, bias=False), nn.GroupNorm(8, c0), nn.ReLU())
        widths = (c0,) + tuple(cfg.channels)
        last = len(cfg.channels) - 1
        self.stages = nn.ModuleList(_ResidualBlock(a, b, 1 if i == last else 2)
                                    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])))
        self.film = nn.Linear(cfg.word_dim, 2 * cfg.channels[-1])
        self.keypoints = SpatialSoftmax()

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        x = self.stem(image)
        for stage in self.stages:
            x = stage(x)
        scale, shift = self.film(text)[:, :, None, None].chunk(2, dim=1)
        return self.keypoints(x * (1 + scale) + shift)


class BCModel(nn.Module):
    def __init__(self, cfg: BCConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word_embedding = nn.Embedding(len(cfg.vocabulary) + 1, cfg.word_dim, padding_idx=_UNKNOWN_WORD)
        self.encoders = nn.ModuleList(ImageEncoder(cfg) for _ in cfg.cameras)
        features = len(cfg.cameras) * 2 * cfg.channels[-1] + cfg.word_dim + 7
        self.head = nn.Sequential(nn.Linear(features, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, cfg.hidden),
                                  nn.ReLU(), nn.Linear(cfg.hidden, cfg.horizon * 7))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` word ids → ``(B, word_dim)``: mean of the known words' embeddings."""
        known = (ids != _UNKNOWN_WORD).float()[..., None]
        return (self.word_embedding(ids) * known).sum(1) / known.sum(1).clamp(min=1.0)

    def forward(self, images: torch.Tensor, proprio: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """``images (B, cams, 3, H, W)`` in [-1, 1], ``proprio (B, 7)`` normalised, ``ids (B, L)`` → ``(B, K, 7)``."""
        if images.shape[1] != len(self.encoders):
            raise ValueError(f"expected {len(self.encoders)} cameras {self.cfg.cameras}, got {images.shape[1]}")
        text = self.encode_text(ids)
        keypoints = [encoder(images[:, i], text) for i, encoder in enumerate(self.encoders)]
        out = self.head(torch.cat(keypoints + [text, proprio], dim=1))
        return out.reshape(-1, self.cfg.horizon, 7)


def save_bc(folder: str | Path, model: BCModel, normalizer: ActionNormalizer) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(model.cfg.model_dump_json(indent=2))
    normalizer.save(folder / NORMALIZATION)
    save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(folder / WEIGHTS))
    return folder


def load_bc(folder: str | Path, device: str | torch.device = "cpu") -> tuple[BCModel, ActionNormalizer]:
    folder = Path(folder)
    paths = {name: folder / name for name in (CONFIG, NORMALIZATION, WEIGHTS)}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing:
        raise CheckpointError(f"{folder} is not a BC checkpoint: {missing} missing (write one with video-policy train-bc)")
    try:
        cfg = BCConfig.model_validate_json(paths[CONFIG].read_text())
        normalizer = ActionNormalizer.load(paths[NORMALIZATION])
    except ValueError as exc:
        raise CheckpointError(f"{folder}: unreadable BC checkpoint: {exc}; re-train it") from None
    model = BCModel(cfg)
    load_weights(model, paths[WEIGHTS])
    return model.to(device).eval(), normalizer
