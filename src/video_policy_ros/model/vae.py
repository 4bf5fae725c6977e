"""Image space the U-Net denoises: raw pixels (tiny config) or SVD's temporal-decoder VAE.

Both map ``[-1, 1]`` RGB frames to the video the U-Net denoises (``encode``), to the
concat condition (``encode_condition``) and back to frames (``decode``). The VAE is
never trained here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from video_policy_ros.model.config import VAEConfig


class PixelSpace(nn.Module):
    """The 'latent' is the ``[-1, 1]`` image itself, each ``patch`` x ``patch`` block of pixels
    folded into the channels (identity for ``patch`` 1)."""

    def __init__(self, patch: int = 1) -> None:
        super().__init__()
        self.patch = patch

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` → ``(N, 3 p^2, H/p, W/p)``."""
        return F.pixel_unshuffle(images, self.patch) if self.patch > 1 else images

    def encode_condition(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)

    def decode(self, latents: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
        """``(B, T, 3 p^2, h, w)`` → ``(B, T, 3, H, W)`` in ``[-1, 1]``."""
        if self.patch > 1:
            latents = F.pixel_shuffle(latents.flatten(0, 1), self.patch).unflatten(0, latents.shape[:2])
        return latents.clamp(-1, 1)


class SVDVae(nn.Module):
    """diffusers ``AutoencoderKLTemporalDecoder`` with SVD's conventions.

    The denoised latents are ``scaling_factor * mode(encode(x))``; the concat condition
    is the *unscaled* mode, as in diffusers' StableVideoDiffusionPipeline, so SVD-XT
    weights see the inputs they were trained on.
    """

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        from diffusers import AutoencoderKLTemporalDecoder

        self.vae = AutoencoderKLTemporalDecoder(
            block_out_channels=cfg.block_out_channels,
            down_block_types=("DownEncoderBlock2D",) * len(cfg.block_out_channels),
            layers_per_block=cfg.layers_per_block,
            latent_channels=cfg.latent_channels,
            scaling_factor=cfg.scaling_factor,
        )
        self.scaling_factor = cfg.scaling_factor

    def encode_condition(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in ``[-1, 1]`` → ``(N, C, H/f, W/f)``."""
        return self.vae.encode(images).latent_dist.mode()

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode_condition(images) * self.scaling_factor

    def decode(self, latents: torch.Tensor, frames_per_clip: int) -> torch.Tensor:
        """``(B, T, C, h, w)`` → ``(B, T, 3, H, W)``; each clip of ``frames_per_clip`` (one camera) decodes together."""
        b, t = latents.shape[:2]
        z = latents.flatten(0, 1) / self.scaling_factor
        clips = [self.vae.decode(c, num_frames=c.shape[0]).sample for c in z.split(frames_per_clip)]
        return torch.cat(clips).unflatten(0, (b, t)).clamp(-1, 1)


def build_vae(cfg: VAEConfig) -> nn.Module:
    return PixelSpace(cfg.patch_size) if cfg.kind == "pixel" else SVDVae(cfg)
