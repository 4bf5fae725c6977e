"""Typed configuration of the Video Policy model and its training (pydantic, ``extra="forbid"``).

Two presets: :meth:`VideoPolicyConfig.tiny` trains and runs on a 2-core CPU (pixel
space, 16x16 grid, the wrist frame + 4 frames per camera); :meth:`VideoPolicyConfig.paper`
is the official Video Policy (SVD-XT, 256x256 → 32x32 latents, the wrist frame + 8 frames
per camera, OpenCLIP ViT-H pooled text token, 3D-ResNet fusion head).
The config is saved with every checkpoint, so it must describe the model completely.

Field defaults are the choices of checkpoints written before the official architecture
was adopted (e.g. ``tests/model/fixtures/pre_official_tiny_config.json``): a key absent from an old
``config.json`` selects what that checkpoint was trained with. Both presets set the
official choices explicitly (see models/README.md, "deviations").
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from video_policy_ros.data.frames import Crop, check_crops

ACTION_DIM = 7  # delta (or absolute) position 3 + axis-angle 3 + gripper 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VAEConfig(_Strict):
    """``pixel``: the video is denoised in pixel space, ``patch_size`` x ``patch_size`` pixels folded into the
    channels (space-to-depth: lossless, so a 32x32 frame costs the U-Net what a 16x16 one does);
    ``svd``: AutoencoderKLTemporalDecoder."""

    kind: Literal["pixel", "svd"] = "pixel"
    latent_channels: int = 3
    patch_size: int = Field(1, ge=1)
    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    scaling_factor: float = 0.18215

    @property
    def downsample(self) -> int:
        return self.patch_size if self.kind == "pixel" else 2 ** (len(self.block_out_channels) - 1)


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
    # hidden size of the bytes encoder; for CLIP its hidden size, or its projection size when pooled
    width: int = 64
    num_layers: int = 1
    trainable: bool = True  # the projection to cross_attention_dim (if any) always trains
    # True: ONE pooled token in the slot of SVD's CLIP image embedding (official: OpenCLIP ViT-H's
    # projected EOT token, no extra projection when width == cross_attention_dim); False: every token.
    pooled: bool = False


# The official head reads input block 9 and output blocks 1, 4, 7, 10 of SGM's VideoUNet
# (``h_pose_indicies: [9, 13, 16, 19, 22]``), finest first after its ``reverse()``. In
# diffusers' UNetSpatioTemporalConditionModel: input block 9 is the last downsampler,
# output block 3i+1 is the second layer of up block i (its attention when it has one).
OFFICIAL_FEATURE_BLOCKS = ("up_blocks.3.attentions.1", "up_blocks.2.attentions.1", "up_blocks.1.attentions.1",
                           "up_blocks.0.resnets.1", "down_blocks.2.downsamplers.0")


class ActionHeadConfig(_Strict):
    """Which U-Net blocks feed the head, how they are fused, and the FiLM 1D U-Net.

    ``fusion``: ``resnet3d`` (official) — per camera a 3D ResNet runs over the features
    finest to coarsest (``feature_blocks`` in that order), every block conditioned on the
    noise level; the cameras are concatenated and a shared trunk reduces time with strided
    convs; ``pooled`` (checkpoints before) — two 3D convs shared by cameras, time averaged.
    """

    feature_blocks: tuple[str, ...] = ("mid_block", "up_blocks.0", "up_blocks.1", "up_blocks.2", "up_blocks.3")
    fusion: Literal["pooled", "resnet3d"] = "pooled"
    # resnet3d: channels after each feature block's stage, of the lateral branch that brings in
    # feature blocks 1.., of the per-camera tail, and of the trunk over all cameras
    tower_channels: tuple[int, ...] = (320, 640, 1280, 1280, 1280)
    lateral_channels: tuple[int, ...] = (320, 640, 640, 640)
    camera_channels: tuple[int, ...] = (864, 576)
    trunk_channels: tuple[int, ...] = (1280, 960, 720, 540, 420, 420, 420)
    temporal_stage_blocks: int = 4  # blocks of each stride-2 temporal stage (log2 frames per camera stages)
    # the noise level seen by the head: its own sinusoidal MLP, or the U-Net's time embedding (official)
    noise_embedding: Literal["sinusoidal", "unet"] = "sinusoidal"
    activation: Literal["mish", "silu"] = "mish"  # of the 1D U-Net (official: SiLU)
    fusion_channels: int = 128
    fusion_grid: int = 4  # the fused maps are pooled to fusion_grid x fusion_grid (resnet3d: if larger)
    fusion_dim: int = 256  # pooled: vector per (camera, block)
    global_cond_dim: int = 512  # pooled: width of the MLP over the fused vectors (resnet3d feeds them directly)
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 128
    # the instruction (the mean of its tokens) joins the global condition beside proprio, so the head
    # need not read which cube is meant out of the U-Net's features (the paper's head reads features only)
    text: bool = False


class ActionConfig(_Strict):
    """``delta`` (ours): each step's pose relative to the TCP pose at the observation, gripper width;
    ``step_delta`` (official): each step relative to the previous one, gripper +1 open / -1 closed,
    zeros past the episode end; ``absolute``: fr3_link0 targets."""

    representation: Literal["delta", "step_delta", "absolute"] = "delta"
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
    # joint: all conditions dropped together per sample; independent (official): text and concat
    # frames each dropped with probability cond_dropout
    dropout: Literal["joint", "independent"] = "joint"
    cond_noise_aug: float = 0.0  # std of the noise added to the condition frames (official 0.02)
    inference_dtype: Literal["float32", "float16", "bfloat16"] = "float32"  # autocast, CUDA only
    # joint (official): video and actions denoised together, one U-Net pass per step. decoupled (as VPP and
    # UVA): one U-Net pass per chunk at feature_sigma gives the head its features (and a one-step predicted
    # video); only the actions are denoised, by the head alone. Stage 2 then trains the head on features at
    # feature_sigma, so a checkpoint's head is made for one of the two.
    sampler: Literal["joint", "decoupled"] = "joint"
    feature_sigma: float = Field(10.0, gt=0)
    # decoupled only. None: a fresh noise draw per chunk, so the head's features vary with the draw.
    # An integer: one draw from this seed, the same in training and at every chunk, so the features are a
    # function of the frames and the instruction alone (the head need not learn to see past the noise).
    feature_noise_seed: int | None = None


class TrainConfig(_Strict):
    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 1e-4  # the video model (U-Net, trainable text parts)
    head_lr: float = 1e-4
    weight_decay: float = 1e-2
    batch_size: int = 8
    amp_dtype: Literal["auto", "float16", "bfloat16"] = "auto"  # CUDA autocast; auto: bf16 where supported
    gradient_checkpointing: bool = False
    grad_clip: float = 1.0
    ema_decay: float | None = 0.999  # None disables EMA
    warmup_steps: int = 100
    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    jitter_hue: float = 0.0  # max hue rotation, as a fraction of a turn (official 0.05)
    val_episodes: int = 1  # held out for evaluation (when more episodes exist)
    eval_samples: int = 4


class VideoPolicyConfig(_Strict):
    cameras: tuple[str, ...] = ("front",)
    image_size: tuple[int, int] = (256, 256)  # (H, W) fed to the model
    # camera → its region of interest, cut before the resize (data/frames.py); a camera without one is whole
    crops: dict[str, Crop] = Field(default_factory=dict)
    future_frames: int = 8  # per camera, after the current frame
    frame_stride: int = 4
    # this camera's current frame leads the video once more (official: the wrist camera, 1 + 3 x 8 = 25
    # frames for SVD-XT); None: no leading frame
    lead_camera: str | None = None
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
        check_crops(self.crops, self.cameras)
        factor = self.vae.downsample * 2 ** (len(self.unet.block_out_channels) - 1)
        if any(s % factor for s in self.image_size):
            raise ValueError(f"image_size {self.image_size} must be divisible by {factor} (VAE x U-Net downsampling)")
        if self.action.horizon % 2 ** (len(self.head.down_dims) - 1):
            raise ValueError("action.horizon must be divisible by 2 ** (len(head.down_dims) - 1)")
        if self.lead_camera is not None and self.lead_camera not in self.cameras:
            raise ValueError(f"lead_camera {self.lead_camera!r} is not one of cameras {list(self.cameras)}")
        if self.head.fusion == "resnet3d" and len(self.head.tower_channels) != len(self.head.feature_blocks):
            raise ValueError("head.tower_channels needs one entry per head.feature_blocks entry")
        if self.head.fusion == "resnet3d" and len(self.head.lateral_channels) != len(self.head.feature_blocks) - 1:
            raise ValueError("head.lateral_channels needs one entry per head.feature_blocks entry after the first")
        if self.head.fusion == "resnet3d" and self.frames_per_camera & (self.frames_per_camera - 1):
            raise ValueError(f"head.fusion 'resnet3d' halves time down to 1: frames per camera (1 + future_frames "
                             f"= {self.frames_per_camera}) must be a power of two")
        if self.vae.kind == "pixel" and self.vae.latent_channels != 3 * self.vae.patch_size ** 2:
            raise ValueError(f"vae.kind 'pixel' with patch_size {self.vae.patch_size} needs vae.latent_channels "
                             f"{3 * self.vae.patch_size ** 2} (3 x patch_size^2)")
        return self

    @property
    def frames_per_camera(self) -> int:
        return 1 + self.future_frames

    @property
    def num_lead_frames(self) -> int:
        return 0 if self.lead_camera is None else 1

    @property
    def num_frames(self) -> int:
        """Frames the U-Net denoises: the lead frame (if any), then every camera's frames tiled along time."""
        return self.num_lead_frames + len(self.cameras) * self.frames_per_camera

    @property
    def latent_size(self) -> tuple[int, int]:
        return (self.image_size[0] // self.vae.downsample, self.image_size[1] // self.vae.downsample)

    @classmethod
    def tiny(cls, cameras: tuple[str, ...] = ("front",), **overrides) -> "VideoPolicyConfig":
        """The official architecture scaled to a 2-core CPU; models/README.md names each deviation."""
        cameras = tuple(cameras)
        base = dict(
            cameras=cameras,
            # 32x32 frames (a 6 cm cube is ~3 px in the front camera) folded 2x2 into a 16x16 'latent'
            image_size=(32, 32),
            future_frames=3,  # 4 frames per camera at t, t+8, t+16, t+24: the official span, half the frames
            frame_stride=8,
            lead_camera="wrist" if "wrist" in cameras else cameras[-1],
            vae=VAEConfig(kind="pixel", latent_channels=12, patch_size=2),
            unet=UNetConfig(
                block_out_channels=(32, 64),
                layers_per_block=1,
                num_attention_heads=(2, 4),
                cross_attention_dim=64,
                addition_time_embed_dim=8,
                added_time_ids=(6.0, 100.0, 0.02),
            ),
            text=TextEncoderConfig(kind="bytes", max_length=32, width=64, num_layers=1, pooled=True),
            head=ActionHeadConfig(
                # the official read-out rule on a 2-level U-Net: second layer of each up block + last downsampler
                feature_blocks=("up_blocks.1.attentions.1", "up_blocks.0.resnets.1", "down_blocks.0.downsamplers.0"),
                fusion="resnet3d",
                tower_channels=(32, 64, 64),
                lateral_channels=(32, 32),
                camera_channels=(64, 48),
                trunk_channels=(64, 48),
                temporal_stage_blocks=2,
                noise_embedding="unet",
                activation="silu",
                fusion_grid=4,
                down_dims=(64, 128),
                step_embed_dim=64,
            ),
            action=ActionConfig(representation="step_delta"),
            edm=EDMConfig(sigma_data=0.5, action_sigma_data=1.0, sigma_max=80.0, num_steps=10,
                          dropout="independent", cond_noise_aug=0.02),
            train=TrainConfig(optimizer="adam", lr=1e-3, head_lr=2e-3, weight_decay=0.0, ema_decay=None,
                              warmup_steps=20, batch_size=8, jitter_hue=0.05),
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def paper(cls, cameras: tuple[str, ...] = ("front", "side", "wrist"), **overrides) -> "VideoPolicyConfig":
        """The official Video Policy (cvlab-columbia/videopolicy, ``video_model/configs``)."""
        cameras = tuple(cameras)
        base = dict(
            cameras=cameras,
            image_size=(256, 256),
            future_frames=7,  # 8 frames per camera at t, t+4 ... t+28
            frame_stride=4,
            lead_camera="wrist" if "wrist" in cameras else cameras[-1],
            vae=VAEConfig(kind="svd", latent_channels=4),
            unet=UNetConfig(added_time_ids=(6.0, 100.0, 0.02)),  # SVD-XT
            # OpenCLIP ViT-H/14 text tower: its projected EOT token (1024) is SVD's image-embedding slot
            text=TextEncoderConfig(kind="clip", max_length=77, width=1024, trainable=False, pooled=True),
            head=ActionHeadConfig(feature_blocks=OFFICIAL_FEATURE_BLOCKS, fusion="resnet3d", noise_embedding="unet",
                                  activation="silu", step_embed_dim=256),
            action=ActionConfig(representation="step_delta"),
            edm=EDMConfig(action_sigma_data=1.0, dropout="independent", cond_noise_aug=0.02,
                          inference_dtype="float16"),
            train=TrainConfig(optimizer="adam", lr=1e-5, head_lr=5e-5, weight_decay=0.0, ema_decay=None,
                              batch_size=32, amp_dtype="float16", gradient_checkpointing=True, jitter_hue=0.05),
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "VideoPolicyConfig":
        """A model config file; ``preset: tiny|paper`` starts from that preset. Errors are one ConfigError."""
        from video_policy_ros.config import ConfigError, build_config, read_yaml

        data = read_yaml(path)
        preset = data.pop("preset", None)
        if preset is None:
            return build_config(cls, data, str(path))
        if preset not in ("tiny", "paper"):
            raise ConfigError(f"{path}: preset must be 'tiny' or 'paper', got {preset!r}")
        # the preset's camera-dependent defaults (the lead camera) follow the file's cameras; malformed
        # cameras are left to build_config's one-line error
        cameras = data.get("cameras")
        named = isinstance(cameras, list) and cameras and all(isinstance(c, str) for c in cameras)
        base = getattr(cls, preset)(**({"cameras": tuple(cameras)} if named else {}))
        return build_config(cls, _deep_update(base.model_dump(), data), str(path))


def _deep_update(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = _deep_update(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base
