"""Typed configuration of the Video Policy model and its training (pydantic, ``extra="forbid"``).

Two presets: :meth:`VideoPolicyConfig.tiny` trains and runs on a 2-core CPU (pixel
space, 16x16 grid, 1 + 4 frames per camera); :meth:`VideoPolicyConfig.paper` is the
paper's SVD-XT system (256x256 → 32x32 latents, 1 + 8 frames per camera, CLIP text).
The config is saved with every checkpoint, so it must describe the model completely.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ACTION_DIM = 7  # delta (or absolute) position 3 + axis-angle 3 + gripper 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VAEConfig(_Strict):
    """``pixel``: the video is denoised in pixel space (identity 'VAE'); ``svd``: AutoencoderKLTemporalDecoder."""

    kind: Literal["pixel", "svd"] = "pixel"
    latent_channels: int = 3
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    scaling_factor: float = 0.18215

    @property
    def downsample(self) -> int:
        return 1 if self.kind == "pixel" else 2 ** (len(self.block_out_channels) - 1)


class UNetConfig(_Strict):
    """Arguments of diffusers' UNetSpatioTemporalConditionModel (block types follow SVD's pattern)."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    layers_per_block: int = 2
    num_attention_heads: tuple[int, ...] = (5, 10, 20, 20)
    cross_attention_dim: int = 1024
    transformer_layers_per_block: int = 1
    addition_time_embed_dim: int = 256
    # SVD's (fps - 1, motion bucket, conditioning noise augmentation), fed as constants.
    added_time_ids: tuple[float, float, float] = (6.0, 127.0, 0.0)

    @model_validator(mode="after")
    def _heads_per_block(self) -> "UNetConfig":
        if len(self.num_attention_heads) != len(self.block_out_channels):
            raise ValueError("unet.num_attention_heads needs one entry per unet.block_out_channels entry")
        return self


class TextEncoderConfig(_Strict):
    """``bytes``: small trainable encoder over UTF-8 bytes; ``clip``: CLIPTextModel from a local folder."""

    kind: Literal["bytes", "clip"] = "bytes"
    max_length: int = 32
    width: int = 64  # hidden size of the bytes encoder, or the CLIP model's hidden size
    num_layers: int = 1
    trainable: bool = True  # the projection to cross_attention_dim always trains


class ActionHeadConfig(_Strict):
    """Which U-Net blocks feed the head, the per-camera 3D-conv fusion and the FiLM 1D U-Net."""

    feature_blocks: tuple[str, ...] = ("mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3")
    fusion_channels: int = 128
    fusion_grid: int = 4  # each feature map is pooled to fusion_grid x fusion_grid after the 3D convs
    fusion_dim: int = 256  # vector per (camera, block)
    global_cond_dim: int = 512
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 128


class ActionConfig(_Strict):
    """``delta``: relative to the TCP pose at the observation (the paper); ``absolute``: fr3_link0 targets."""

    representation: Literal["delta", "absolute"] = "delta"
    horizon: int = 32
    execute: int = 16  # how many of the chunk's steps the paper executes before re-planning


class EDMConfig(_Strict):
    """EDM noise distribution, v-prediction scalings and the Euler sampler."""

    p_mean: float = 1.0
    p_std: float = 1.6
    sigma_data: float = 1.0  # video (latents or [-1, 1] pixels)
    action_sigma_data: float = 0.5  # actions normalised to [-1, 1]
    sigma_min: float = 0.002
    sigma_max: float = 700.0
    rho: float = 7.0
    num_steps: int = 30
    guidance: float = 2.0
    cond_dropout: float = 0.1


class TrainConfig(_Strict):
    lr: float = 1e-4
    head_lr: float = 1e-4
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    ema_decay: float | None = 0.999  # None disables EMA
    warmup_steps: int = 100
    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    val_episodes: int = 1  # held out for evaluation (when more episodes exist)
    eval_samples: int = 4


class VideoPolicyConfig(_Strict):
    cameras: tuple[str, ...] = ("front",)
    image_size: tuple[int, int] = (256, 256)  # (H, W) fed to the model
    future_frames: int = 8  # per camera, after the current frame
    frame_stride: int = 4
    proprio: bool = False  # the paper has none; when on, TCP pose + gripper feed the head
    vae: VAEConfig = Field(default_factory=VAEConfig)
    unet: UNetConfig = Field(default_factory=UNetConfig)
    text: TextEncoderConfig = Field(default_factory=TextEncoderConfig)
    head: ActionHeadConfig = Field(default_factory=ActionHeadConfig)
    action: ActionConfig = Field(default_factory=ActionConfig)
    edm: EDMConfig = Field(default_factory=EDMConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "VideoPolicyConfig":
        if not self.cameras or len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be non-empty and unique, got {self.cameras}")
        factor = self.vae.downsample * 2 ** (len(self.unet.block_out_channels) - 1)
        if any(s % factor for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be divisible by {factor} (VAE x U-Net downsampling)")
        if self.action.horizon % 2 ** (len(self.head.down_dims) - 1):
            raise ValueError("action.horizon must be divisible by 2 ** (len(head.down_dims) - 1)")
        if self.vae.kind == "pixel" and self.vae.latent_channels != 3:
            raise ValueError("vae.kind 'pixel' needs vae.latent_channels 3")
        return self

    @property
    def frames_per_camera(self) -> int:
        return 1 + self.future_frames

    @property
    def num_frames(self) -> int:
        """Frames the U-Net denoises: every camera's frames tiled along time."""
        return len(self.cameras) * self.frames_per_camera

    @property
    def latent_size(self) -> tuple[int, int]:
        return (self.image_size[0] // self.vae.downsample, self.image_size[1] // self.vae.downsample)

    @classmethod
    def tiny(cls, cameras: tuple[str, ...] = ("front",), **overrides) -> "VideoPolicyConfig":
        base = dict(
            cameras=tuple(cameras),
            image_size=(16, 16),
            future_frames=4,
            frame_stride=4,
            vae=VAEConfig(kind="pixel", latent_channels=3),
            unet=UNetConfig(
                block_out_channels=(32, 64),
                layers_per_block=1,
                num_attention_heads=(2, 4),
                cross_attention_dim=64,
                addition_time_embed_dim=8,
            ),
            text=TextEncoderConfig(kind="bytes", max_length=32, width=64, num_layers=1),
            head=ActionHeadConfig(
                feature_blocks=("mid_block", "up_blocks.0", "up_blocks.1"),
                fusion_channels=32,
                fusion_grid=2,
                fusion_dim=64,
                global_cond_dim=128,
                down_dims=(64, 128),
                step_embed_dim=64,
            ),
            edm=EDMConfig(sigma_data=0.5, sigma_max=80.0, num_steps=10),
            train=TrainConfig(lr=1e-3, head_lr=1e-3, warmup_steps=20, ema_decay=0.99),
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def paper(cls, cameras: tuple[str, ...] = ("front", "side", "wrist"), **overrides) -> "VideoPolicyConfig":
        base = dict(
            cameras=tuple(cameras),
            image_size=(256, 256),
            future_frames=8,
            frame_stride=4,
            vae=VAEConfig(kind="svd", latent_channels=4),
            unet=UNetConfig(),  # SVD-XT
            # CLIP ViT-L/14 text tower (hidden 768), projected to SVD's 1024-d cross-attention.
            text=TextEncoderConfig(kind="clip", max_length=77, width=768, trainable=False),
            head=ActionHeadConfig(),
            edm=EDMConfig(),
            train=TrainConfig(),
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "VideoPolicyConfig":
        import yaml

        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        preset = data.pop("preset", None)
        if preset is None:
            return cls.model_validate(data)
        if preset not in ("tiny", "paper"):
            raise ValueError(f"{path}: preset must be 'tiny' or 'paper', got {preset!r}")
        base = getattr(cls, preset)().model_dump()
        return cls.model_validate(_deep_update(base, data))


def _deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = _deep_update(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base
