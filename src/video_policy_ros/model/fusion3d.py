"""The official action-head fusion: noise-conditioned 3D ResNets over the U-Net's features.

Per camera, a tower of bottleneck stages walks the hooked feature maps from the finest
to the coarsest: each stage strides down to the next map's resolution, which a lateral
stage brings in by concatenation; two more stages narrow the result. The cameras'
outputs are concatenated along channels and a shared trunk narrows them further, then
halves time with stride-2 stages until one step is left. Every block adds the noise
level's embedding (the U-Net's own time embedding) after its first 1x1x1 conv.

Architecture as in the official ``VideoResNet`` (``pose_model.py``); widths, depths
and the number of stages come from :class:`~video_policy_ros.model.config.ActionHeadConfig`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _groups(channels: int, most: int = 32) -> int:
    """The largest GroupNorm group count up to ``most`` that divides ``channels``."""
    return max(d for d in range(1, most + 1) if channels % d == 0)


class Bottleneck3D(nn.Module):
    """1x1x1 → (+ noise embedding) → 3x3x3 (strided) → 1x1x1, with a residual."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, expansion: int,
                 temporal_stride: int = 1, stride: int = 1) -> None:
        super().__init__()
        mid = out_ch // expansion
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, mid))
        self.conv1 = nn.Sequential(nn.Conv3d(in_ch, mid, 1, bias=False), nn.GroupNorm(_groups(mid), mid), nn.SiLU())
        self.conv2 = nn.Sequential(nn.Conv3d(mid, mid, 3, (temporal_stride, stride, stride), 1, bias=False),
                                   nn.GroupNorm(_groups(mid), mid), nn.SiLU())
        self.conv3 = nn.Sequential(nn.Conv3d(mid, out_ch, 1, bias=False), nn.GroupNorm(_groups(out_ch), out_ch))
        self.shortcut = nn.Identity()
        if in_ch != out_ch or stride != 1 or temporal_stride != 1:
            self.shortcut = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, (temporal_stride, stride, stride), bias=False),
                                          nn.GroupNorm(_groups(out_ch), out_ch))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """``(N, in_ch, T, h, w)``, ``(N, emb_dim)`` → ``(N, out_ch, T / ts, h / s, w / s)``."""
        h = self.conv1(x) + self.emb(emb).to(x.dtype)[:, :, None, None, None]
        return F.silu(self.conv3(self.conv2(h)) + self.shortcut(x))


class Stage3D(nn.ModuleList):
    """``blocks`` bottlenecks; the first changes width and strides."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, blocks: int = 2, expansion: int = 4,
                 temporal_stride: int = 1, stride: int = 1) -> None:
        super().__init__([Bottleneck3D(in_ch, out_ch, emb_dim, expansion, temporal_stride, stride)]
                         + [Bottleneck3D(out_ch, out_ch, emb_dim, expansion) for _ in range(blocks - 1)])

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for block in self:
            x = block(x, emb)
        return x


class CameraTower(nn.Module):
    """One camera's feature maps, finest first → ``(N, camera_channels[-1], T, h_last, w_last)``."""

    def __init__(self, feature_channels: list[int], feature_sizes: list[int], tower: tuple[int, ...],
                 lateral: tuple[int, ...], tail: tuple[int, ...], emb_dim: int) -> None:
        super().__init__()
        # each stage strides from its feature map's resolution down to the next one's
        strides = [a // b for a, b in zip(feature_sizes, feature_sizes[1:])] + [1]
        inputs = [feature_channels[0]] + [t + l for t, l in zip(tower, lateral)]
        self.stages = nn.ModuleList(Stage3D(i, o, emb_dim, stride=s) for i, o, s in zip(inputs, tower, strides))
        self.laterals = nn.ModuleList(Stage3D(c, l, emb_dim) for c, l in zip(feature_channels[1:], lateral))
        widths = [tower[-1], *tail]
        self.tail = nn.ModuleList(Stage3D(i, o, emb_dim) for i, o in zip(widths, widths[1:]))

    def forward(self, features: list[torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
        x = self.stages[0](features[0], emb)
        for stage, lateral, feat in zip(self.stages[1:], self.laterals, features[1:]):
            x = stage(torch.cat([x, lateral(feat, emb)], dim=1), emb)
        for stage in self.tail:
            x = stage(x, emb)
        return x


class ResNet3DFusion(nn.Module):
    """All cameras' feature maps → the head's global condition ``(B, out_dim)``."""

    def __init__(self, num_cameras: int, frames_per_camera: int, feature_channels: list[int],
                 feature_sizes: list[int], head_cfg, emb_dim: int) -> None:
        super().__init__()
        h = head_cfg
        if any(a % b for a, b in zip(feature_sizes, feature_sizes[1:])):
            raise ValueError(f"head.feature_blocks must go from fine to coarse (sizes {feature_sizes}) for "
                             "fusion 'resnet3d'")
        self.towers = nn.ModuleList(CameraTower(feature_channels, feature_sizes, h.tower_channels,
                                                h.lateral_channels, h.camera_channels, emb_dim)
                                    for _ in range(num_cameras))
        widths = [num_cameras * h.camera_channels[-1], *h.trunk_channels]
        # official: 4x bottlenecks where a stage changes width, 2x where it keeps it
        self.trunk = nn.ModuleList(Stage3D(i, o, emb_dim, expansion=4 if i != o else 2)
                                   for i, o in zip(widths, widths[1:]))
        width = widths[-1]
        self.temporal = nn.ModuleList(Stage3D(width, width, emb_dim, h.temporal_stage_blocks, 2, temporal_stride=2)
                                      for _ in range(int(math.log2(frames_per_camera))))
        self.norm = nn.GroupNorm(_groups(width), width)
        self.grid = min(h.fusion_grid, feature_sizes[-1])
        self.out_dim = width * self.grid * self.grid

    def forward(self, per_camera: list[list[torch.Tensor]], emb: torch.Tensor) -> torch.Tensor:
        """``per_camera[c][k]``: camera c's feature map k ``(B, C_k, T, h_k, w_k)``; ``emb`` ``(B, E)`` → ``(B, out_dim)``."""
        x = torch.cat([tower(feats, emb) for tower, feats in zip(self.towers, per_camera)], dim=1)
        for stage in [*self.trunk, *self.temporal]:
            x = stage(x, emb)
        x = self.norm(x)  # (B, width, 1, h, w)
        if x.shape[-1] != self.grid:
            x = F.adaptive_avg_pool3d(x, (1, self.grid, self.grid))
        return x.flatten(1)
