"""Action head: U-Net features → fusion → global condition → FiLM 1D U-Net.

Fusion (``head.fusion``): ``resnet3d`` is the official noise-conditioned 3D ResNet
(fusion3d.py); ``pooled`` (checkpoints before it) runs two 3D convs shared by the
cameras, averages time away and feeds an MLP. The 1D U-Net follows Diffusion Policy's
ConditionalUnet1D: residual conv blocks over the chunk's time axis, each modulated
(FiLM scale and bias) by the concatenation of the noise-level embedding and the global
condition.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from video_policy_ros.model.config import ACTION_DIM, VideoPolicyConfig
from video_policy_ros.model.fusion3d import ResNet3DFusion

PROPRIO_DIM = 7  # TCP position 3 + axis-angle 3 (relative to the reference orientation) + gripper 1


class CameraFusion(nn.Module):
    """One feature block's maps of one camera's frames → one vector (weights shared by cameras)."""

    def __init__(self, in_channels: int, channels: int, grid: int, out_dim: int, groups: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(in_channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.Conv3d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels),
            nn.SiLU(),
            nn.AdaptiveAvgPool3d((1, grid, grid)),  # pool time; keep a coarse spatial layout
        )
        self.out = nn.Linear(channels * grid * grid, out_dim)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, h, w)`` → ``(N, out_dim)``."""
        return self.out(self.net(feat).flatten(1))


ACTIVATIONS = {"mish": nn.Mish, "silu": nn.SiLU}


class FiLMResBlock1D(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, cond_dim: int, kernel: int, groups: int, activation: str) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]

        def conv(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv1d(i, o, kernel, padding=kernel // 2), nn.GroupNorm(groups, o), act())

        self.conv1, self.conv2 = conv(in_ch, out_ch), conv(out_ch, out_ch)
        self.film = nn.Sequential(act(), nn.Linear(cond_dim, 2 * out_ch))
        self.skip = nn.Conv1d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """``(B, in_ch, K)``, ``(B, cond_dim)`` → ``(B, out_ch, K)``."""
        scale, bias = self.film(cond)[..., None].chunk(2, dim=1)
        h = self.conv1(x) * scale + bias
        return self.conv2(h) + self.skip(x)


def sinusoidal(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,)`` → ``(B, dim)``. ``x`` is c_noise = ln(sigma)/4, about [-1.6, 1.7]: scaled by 100 so
    that the highest frequencies resolve small noise-level differences."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    arg = 100.0 * x.float()[:, None] * freqs
    return torch.cat([arg.sin(), arg.cos()], dim=-1)


class ActionHead(nn.Module):
    """``block_channels`` / ``block_sizes``: channels and height of each hooked feature map;
    ``unet_emb_dim``: width of the U-Net's time embedding (``head.noise_embedding: unet``)."""

    def __init__(self, cfg: VideoPolicyConfig, block_channels: list[int], block_sizes: list[int],
                 unet_emb_dim: int) -> None:
        super().__init__()
        h = cfg.head
        self.num_cameras = len(cfg.cameras)
        self.frames_per_camera = cfg.frames_per_camera
        self.lead_frames = cfg.num_lead_frames
        self.step_dim = h.step_embed_dim
        self.unet_noise = h.noise_embedding == "unet"
        self.reads_text = h.text
        # beside the fused features: proprio, and the instruction (the mean of its tokens)
        proprio_dim = (PROPRIO_DIM if cfg.proprio else 0) + (cfg.unet.cross_attention_dim if h.text else 0)
        if h.fusion == "resnet3d":
            self.fusion = ResNet3DFusion(self.num_cameras, self.frames_per_camera, block_channels, block_sizes,
                                         h, unet_emb_dim)
            self.global_cond = nn.Identity()  # official: the fused maps, flattened, are the condition
            global_dim = self.fusion.out_dim + proprio_dim
        else:
            self.fusion = nn.ModuleList(
                CameraFusion(c, h.fusion_channels, h.fusion_grid, h.fusion_dim, h.n_groups) for c in block_channels
            )
            fused = self.num_cameras * len(block_channels) * h.fusion_dim + proprio_dim
            self.global_cond = nn.Sequential(nn.Linear(fused, h.global_cond_dim), nn.SiLU(),
                                             nn.Linear(h.global_cond_dim, h.global_cond_dim))
            global_dim = h.global_cond_dim
        if self.unet_noise:  # official: SiLU + Linear on the U-Net's time embedding
            self.step_mlp = nn.Sequential(nn.SiLU(), nn.Linear(unet_emb_dim, h.step_embed_dim))
        else:
            self.step_mlp = nn.Sequential(nn.Linear(h.step_embed_dim, 4 * h.step_embed_dim), nn.Mish(),
                                          nn.Linear(4 * h.step_embed_dim, h.step_embed_dim))
        cond_dim = h.step_embed_dim + global_dim
        dims = [ACTION_DIM, *h.down_dims]
        pairs = list(zip(dims[:-1], dims[1:]))

        def block(i: int, o: int) -> FiLMResBlock1D:
            return FiLMResBlock1D(i, o, cond_dim, h.kernel_size, h.n_groups, h.activation)

        self.down = nn.ModuleList()
        for n, (i, o) in enumerate(pairs):
            last = n == len(pairs) - 1
            self.down.append(nn.ModuleList([block(i, o), block(o, o),
                                            nn.Identity() if last else nn.Conv1d(o, o, 3, 2, 1)]))
        self.mid = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up = nn.ModuleList()
        for i, o in reversed(pairs[1:]):
            self.up.append(nn.ModuleList([block(2 * o, i), block(i, i), nn.ConvTranspose1d(i, i, 4, 2, 1)]))
        self.final = nn.Sequential(nn.Conv1d(h.down_dims[0], h.down_dims[0], h.kernel_size, padding=h.kernel_size // 2),
                                   nn.GroupNorm(h.n_groups, h.down_dims[0]), ACTIVATIONS[h.activation](),
                                   nn.Conv1d(h.down_dims[0], ACTION_DIM, 1))

    def per_camera(self, feat: torch.Tensor) -> torch.Tensor:
        """One hooked map ``(B * F, C, h, w)`` → ``(B, cams, C, Tc, h, w)``: the lead frame (a
        duplicate of a camera's current frame) dropped, frames tiled camera by camera."""
        bf, c, fh, fw = feat.shape
        f = self.lead_frames + self.num_cameras * self.frames_per_camera
        frames = feat.reshape(bf // f, f, c, fh, fw)[:, self.lead_frames:]
        return frames.reshape(-1, self.num_cameras, self.frames_per_camera, c, fh, fw).transpose(2, 3)

    def condition(self, features: list[torch.Tensor], proprio: torch.Tensor | None,
                  noise_emb: torch.Tensor | None, text: torch.Tensor | None = None) -> torch.Tensor:
        """Hooked U-Net features, each ``(B * F, C_i, h_i, w_i)`` (+ proprio ``(B, 7)``, + the U-Net's
        time embedding ``(B, E)`` for resnet3d, + the instruction's tokens ``(B, L, D)`` for ``head.text``)
        → global condition ``(B, global_dim)``."""
        maps = [self.per_camera(f) for f in features]
        if isinstance(self.fusion, ResNet3DFusion):
            vectors = [self.fusion([[m[:, cam] for m in maps] for cam in range(self.num_cameras)], noise_emb)]
        else:  # (B, cams * fusion_dim) per block, camera order kept
            vectors = [fuse(m.flatten(0, 1)).reshape(m.shape[0], -1) for fuse, m in zip(self.fusion, maps)]
        if proprio is not None:
            vectors.append(proprio)
        if self.reads_text:
            if text is None:
                raise ValueError("this head reads the instruction (head.text): pass its tokens")
            vectors.append(text.mean(dim=1))
        return self.global_cond(torch.cat(vectors, dim=-1))

    def forward(self, actions: torch.Tensor, c_noise: torch.Tensor, features: list[torch.Tensor],
                proprio: torch.Tensor | None = None, unet_emb: torch.Tensor | None = None,
                text: torch.Tensor | None = None) -> torch.Tensor:
        """c_in-scaled noisy actions ``(B, K, 7)``, ``c_noise`` ``(B,)``, the U-Net's time embedding of
        ``c_noise`` ``(B, E)`` (needed by ``noise_embedding: unet``) → network output ``(B, K, 7)``."""
        return self.denoise_step(actions, c_noise, self.condition(features, proprio, unet_emb, text), unet_emb)

    def denoise_step(self, actions: torch.Tensor, c_noise: torch.Tensor, global_cond: torch.Tensor,
                     unet_emb: torch.Tensor | None = None) -> torch.Tensor:
        """The 1D U-Net alone, on a global condition from :meth:`condition` (the decoupled sampler
        computes it once per chunk): ``(B, K, 7)``, ``(B,)``, ``(B, global_dim)`` → ``(B, K, 7)``."""
        step = self.step_mlp(unet_emb if self.unet_noise else sinusoidal(c_noise, self.step_dim))
        cond = torch.cat([step, global_cond], -1)
        x = actions.transpose(1, 2)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, cond), cond)
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, cond)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, cond), cond))
        return self.final(x).transpose(1, 2)
