"""The Video Policy network: SVD U-Net (video denoiser) + feature hooks + action head.

Frames of all cameras are tiled along time, camera by camera: with ``Tc`` frames per
camera the video is ``[lead, cam0 f0..f{Tc-1}, cam1 f0.., ...]``, ``F = L + cams * Tc``,
where the optional lead frame (``L = 1``, official: 1 + 3 x 8 = SVD-XT's 25 frames) is
``lead_camera``'s current frame once more. Each camera's current frame (its encoded
latent) is concatenated to the channels of all of that camera's frames (and of the lead
frame for ``lead_camera``); the instruction enters through cross-attention.
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import UNetSpatioTemporalConditionModel
from torch import nn

from video_policy_ros.model import edm
from video_policy_ros.model.action_head import ActionHead
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.text_encoder import build_text_encoder
from video_policy_ros.model.vae import build_vae

MODES = ("video", "head", "joint")
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build_unet(cfg: VideoPolicyConfig) -> UNetSpatioTemporalConditionModel:
    u, n = cfg.unet, len(cfg.unet.block_out_channels)
    c = cfg.vae.latent_channels
    return UNetSpatioTemporalConditionModel(
        sample_size=cfg.latent_size[0],
        in_channels=2 * c,  # noisy video + concat condition
        out_channels=c,
        down_block_types=("CrossAttnDownBlockSpatioTemporal",) * (n - 1) + ("DownBlockSpatioTemporal",),
        up_block_types=("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * (n - 1),
        block_out_channels=u.block_out_channels,
        addition_time_embed_dim=u.addition_time_embed_dim,
        projection_class_embeddings_input_dim=3 * u.addition_time_embed_dim,
        layers_per_block=u.layers_per_block,
        cross_attention_dim=u.cross_attention_dim,
        transformer_layers_per_block=u.transformer_layers_per_block,
        num_attention_heads=u.num_attention_heads,
        num_frames=cfg.num_frames,
    )


def feature_geometry(cfg: VideoPolicyConfig) -> list[tuple[int, int]]:
    """``(channels, height)`` of each hooked output: ``mid_block``, a whole ``up_blocks.i`` /
    ``down_blocks.i`` (after its resampler), or one of their ``resnets.j`` / ``attentions.j`` /
    ``downsamplers.0`` (in diffusers' UNetSpatioTemporalConditionModel)."""
    boc, size = cfg.unet.block_out_channels, cfg.latent_size[0]
    n = len(boc)
    out = []
    for name in cfg.head.feature_blocks:
        parts = name.split(".")
        kind, idx = parts[0], int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        inner = parts[2] if len(parts) == 4 and parts[3].isdigit() else None
        if name == "mid_block":
            out.append((boc[-1], size >> (n - 1)))
        elif kind == "down_blocks" and 0 <= idx < n and len(parts) in (2, 4) and inner in (None, "resnets", "attentions", "downsamplers"):
            halved = inner == "downsamplers" or (inner is None and idx < n - 1)
            out.append((boc[idx], size >> (idx + halved)))
        elif kind == "up_blocks" and 0 <= idx < n and len(parts) in (2, 4) and inner in (None, "resnets", "attentions"):
            doubled = inner is None and idx < n - 1
            out.append((boc[::-1][idx], size >> (n - 1 - idx - doubled)))
        else:
            raise ValueError(f"head.feature_blocks: unknown U-Net block {name!r} (use mid_block, up_blocks.0..{n - 1} "
                             f"or down_blocks.0..{n - 1}, optionally with .resnets.j, .attentions.j or .downsamplers.0)")
    return out


class VideoPolicyModel(nn.Module):
    def __init__(self, cfg: VideoPolicyConfig, clip_folder: str | Path | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.vae = build_vae(cfg.vae)
        self.text_encoder = build_text_encoder(cfg.text, cfg.unet.cross_attention_dim, clip_folder)
        self.unet = build_unet(cfg)
        geometry = feature_geometry(cfg)
        self.head = ActionHead(cfg, [c for c, _ in geometry], [h for _, h in geometry],
                               self.unet.time_embedding.linear_2.out_features)
        self.register_buffer("added_time_ids", torch.tensor([cfg.unet.added_time_ids]), persistent=False)
        self._features: dict[str, torch.Tensor] = {}
        modules = dict(self.unet.named_modules())
        for name in cfg.head.feature_blocks:
            if name not in modules:
                raise ValueError(f"head.feature_blocks: the U-Net has no module {name!r}")
            modules[name].register_forward_hook(self._keep_feature(name))

    def train(self, mode: bool = True) -> "VideoPolicyModel":
        """Parts whose parameters are all frozen (the U-Net and text encoder in stage 2, a frozen text tower)
        stay as at inference, without dropout: the head must learn from the features the sampler will give it."""
        super().train(mode)
        if mode:
            for module in self.modules():
                params = list(module.parameters())
                if module is not self and params and not any(p.requires_grad for p in params):
                    module.eval()
        return self

    def _keep_feature(self, name: str):
        def hook(module, args, output) -> None:
            # down blocks return (hidden_states, residuals), attentions (hidden_states,); the others a tensor.
            self._features[name] = output[0] if isinstance(output, tuple) else output
        return hook

    # -- encoders ---------------------------------------------------------------------------

    @torch.no_grad()
    def encode_video(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, F, 3, H, W)`` in [-1, 1] → latents ``(B, F, C, h, w)``."""
        return self.vae.encode(video.flatten(0, 1)).unflatten(0, video.shape[:2])

    def current_frames(self, video: torch.Tensor) -> torch.Tensor:
        """``(B, F, ...)`` video → each camera's current frame ``(B, cams, ...)``."""
        return video[:, self.cfg.num_lead_frames:: self.cfg.frames_per_camera]

    @torch.no_grad()
    def encode_condition(self, current: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Current frame per camera ``(B, cams, 3, H, W)`` → concat condition ``(B, F, C, h, w)``.

        The frames get ``edm.cond_noise_aug`` Gaussian noise first (as SVD's ``cond_aug``, at
        training and inference; the U-Net is told its level by the third added time id).
        """
        if self.cfg.edm.cond_noise_aug:
            # Drawn where the generator lives (the trainer's is a CPU one, for the data loader too).
            where = generator.device if generator is not None else current.device
            noise = torch.randn(current.shape, generator=generator, device=where, dtype=current.dtype).to(current.device)
            current = current + self.cfg.edm.cond_noise_aug * noise
        z = self.vae.encode_condition(current.flatten(0, 1)).unflatten(0, current.shape[:2])
        z = z.repeat_interleave(self.cfg.frames_per_camera, dim=1)
        if self.cfg.lead_camera is None:
            return z
        lead = self.cfg.cameras.index(self.cfg.lead_camera) * self.cfg.frames_per_camera
        return torch.cat([z[:, lead: lead + 1], z], dim=1)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        """``B`` instructions → ``(B, L, cross_attention_dim)``."""
        return self.text_encoder(texts)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """``(B, F, C, h, w)`` → frames ``(B, cams * Tc, 3, H, W)`` in [-1, 1], camera by camera
        (the lead frame, a duplicate, is dropped)."""
        return self.vae.decode(latents[:, self.cfg.num_lead_frames:], self.cfg.frames_per_camera)

    # -- denoiser -----------------------------------------------------------------------------

    def denoise(
        self,
        x_video: torch.Tensor,
        x_action: torch.Tensor | None,
        sigma: torch.Tensor,
        cond: torch.Tensor,
        text: torch.Tensor,
        proprio: torch.Tensor | None = None,
        drop: torch.Tensor | None = None,
        run_head: bool = True,
        unet_grad: bool = True,
        action_sigma: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """EDM denoiser ``D(x; sigma)`` for the video and the action chunk.

        ``x_video`` ``(B, F, C, h, w)``, ``x_action`` ``(B, K, 7)`` or None, ``sigma`` ``(B,)``,
        ``cond`` ``(B, F, C, h, w)``, ``text`` ``(B, L, D)``, ``proprio`` ``(B, 7)`` or None,
        ``drop`` ``(B,)`` bool: drop every condition (classifier-free guidance's unconditional).
        ``action_sigma`` ``(B,)``: the actions' own noise level (the decoupled sampler's head, whose
        features come from the video at ``sigma``); None: the shared ``sigma`` (joint).
        Returns ``(D_video (B, F, C, h, w), D_action (B, K, 7) or None)``.
        """
        cond, text, proprio = self._drop_conditions(cond, text, proprio, drop)
        d_video, features, c_noise = self._unet_pass(x_video, sigma, cond, text, unet_grad)
        if x_action is None or not run_head:
            return d_video, None
        global_cond = self.head.condition(features, proprio, self._unet_embedding(c_noise, x_video.dtype), text)
        return d_video, self._head_step(x_action, sigma if action_sigma is None else action_sigma, global_cond)

    @staticmethod
    def _drop_conditions(cond, text, proprio, drop):
        if drop is None:
            return cond, text, proprio
        keep = (~drop).to(cond.dtype)
        return (cond * keep[:, None, None, None, None], text * keep[:, None, None],
                None if proprio is None else proprio * keep[:, None])

    def _unet_pass(self, x_video, sigma, cond, text, unet_grad: bool = True):
        """The U-Net at ``sigma`` → (D_video, the hooked features, c_noise)."""
        c_skip, c_out, c_in, c_noise = (s.to(x_video.dtype) for s in edm.scalings(sigma, self.cfg.edm.sigma_data))
        unet_in = torch.cat([x_video * c_in[:, None, None, None, None], cond], dim=2)
        self._features = {}
        with torch.set_grad_enabled(unet_grad and torch.is_grad_enabled()):
            out = self.unet(unet_in, c_noise, text, self.added_time_ids.expand(len(sigma), -1).to(x_video.dtype),
                            return_dict=False)[0]
        d_video = c_skip[:, None, None, None, None] * x_video + c_out[:, None, None, None, None] * out
        features = [self._features[name] for name in self.cfg.head.feature_blocks]
        self._features = {}
        return d_video, features, c_noise

    def _unet_embedding(self, c_noise: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """The U-Net's time embedding of ``c_noise``, which the official head reads (None for the others)."""
        if self.cfg.head.noise_embedding != "unet":
            return None
        return self.unet.time_embedding(self.unet.time_proj(c_noise).to(dtype))

    def _head_step(self, x_action: torch.Tensor, sigma: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """``D_action(x; sigma)`` from the head's global condition (fused features + proprio)."""
        a_skip, a_out, a_in, a_noise = (s.to(x_action.dtype) for s in edm.scalings(sigma, self.cfg.edm.action_sigma_data))
        out = self.head.denoise_step(x_action * a_in[:, None, None], a_noise, global_cond,
                                     self._unet_embedding(a_noise, x_action.dtype))
        return a_skip[:, None, None] * x_action + a_out[:, None, None] * out

    def training_loss(
        self,
        video: torch.Tensor,
        cond: torch.Tensor,
        text: torch.Tensor,
        actions: torch.Tensor | None,
        action_mask: torch.Tensor | None,
        proprio: torch.Tensor | None,
        mode: str,
        generator: torch.Generator | None = None,
        video_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """EDM loss of one batch. ``video`` are clean latents ``(B, F, C, h, w)``; ``actions``
        normalised ``(B, K, 7)`` with ``action_mask`` ``(B,)`` marking samples that have them,
        ``video_mask`` ``(B,)`` those whose frames may teach the video model (not relabelled ones).

        ``video``: video loss only; ``head``: U-Net frozen (no graph through it), action loss
        only; ``joint``: both. Conditions are dropped per sample with ``edm.cond_dropout``:
        all together (``edm.dropout: joint``) or text and concat frames independently.
        With ``edm.sampler: decoupled`` the head learns from the U-Net's pass on pure noise at
        ``edm.feature_sigma`` while the actions draw their own noise level, as that sampler runs it: the
        sampler cannot know the future frames, so a head trained on features of the noised true future
        would learn from a signal that inference never has.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        e = self.cfg.edm
        decoupled = e.sampler == "decoupled" and mode != "video"
        if decoupled and mode == "joint":
            raise ValueError("edm.sampler 'decoupled' trains its head on a frozen video model: use the two stages "
                             "(--mode video, then --mode head), not joint training")
        b, device = video.shape[0], video.device
        sigma = edm.sample_sigma(b, e.p_mean, e.p_std, device, generator)
        action_sigma = sigma
        if decoupled:
            sigma = torch.full_like(sigma, e.feature_sigma)
        drop = torch.rand(b, device=device, generator=generator) < e.cond_dropout
        if e.dropout == "independent":  # the concat frames keep `drop`; the text draws its own
            drop_text = torch.rand(b, device=device, generator=generator) < e.cond_dropout
            text = text * (~drop_text).to(text.dtype)[:, None, None]
            cond = cond * (~drop).to(cond.dtype)[:, None, None, None, None]
            proprio = None if proprio is None else proprio * (~drop).to(proprio.dtype)[:, None]
            drop = None
        if decoupled:
            x_video = self._feature_noise(video.shape, device, generator)
        else:
            noise = torch.randn(video.shape, device=device, generator=generator)
            x_video = video + sigma[:, None, None, None, None] * noise
        x_action = None
        if mode != "video":
            x_action = actions + action_sigma[:, None, None] * torch.randn(actions.shape, device=device, generator=generator)
        d_video, d_action = self.denoise(x_video, x_action, sigma, cond, text, proprio, drop,
                                         run_head=mode != "video", unet_grad=mode != "head", action_sigma=action_sigma)
        video_err = video.new_zeros(b, 0)
        if mode != "head":
            video_err = edm.loss_weight(sigma, e.sigma_data)[:, None] * (d_video.float() - video).pow(2).mean(dim=(2, 3, 4))
        action_err = None
        if d_action is not None:
            w = edm.loss_weight(action_sigma, e.action_sigma_data)[:, None]
            action_err = w * (d_action.float() - actions).pow(2).mean(dim=2)
        return edm.edm_loss(video_err, action_err, action_mask, video_mask)

    def _feature_noise(self, shape: tuple[int, ...], device, generator: torch.Generator | None) -> torch.Tensor:
        """The decoupled U-Net pass's input: pure noise at ``edm.feature_sigma``, drawn afresh or, with
        ``edm.feature_noise_seed``, the one draw of that seed for every sample (training and sampling alike)."""
        e = self.cfg.edm
        if e.feature_noise_seed is None:
            return torch.randn(shape, generator=generator, device=device) * e.feature_sigma
        fixed = torch.randn(shape[1:], generator=torch.Generator().manual_seed(e.feature_noise_seed))
        return (fixed * e.feature_sigma).to(device).expand(shape)

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        text: torch.Tensor,
        proprio: torch.Tensor | None = None,
        num_steps: int | None = None,
        guidance: float | None = None,
        with_actions: bool = True,
        generator: torch.Generator | None = None,
        denoiser=None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Euler sampling (``edm.sampler``). ``cond`` ``(B, F, C, h, w)``, ``text`` ``(B, L, D)`` →
        video latents ``(B, F, C, h, w)`` and normalised actions ``(B, K, 7)`` (or None).

        joint: video and actions stepped together. decoupled: one U-Net pass at ``edm.feature_sigma``
        (its one-step estimate is the predicted video), then the head alone steps the actions.
        ``denoiser``: a callable with :meth:`denoise`'s signature that runs the network instead
        (an inference backend of ``runtime/``: ONNX Runtime, TensorRT, ...); joint sampling only."""
        e = self.cfg.edm
        if e.sampler == "decoupled" and denoiser is not None:
            raise ValueError("the decoupled sampler runs the torch model itself (no exported denoiser graph)")
        num_steps = e.num_steps if num_steps is None else num_steps
        guidance = e.guidance if guidance is None else guidance
        b = cond.shape[0]
        if guidance != 1.0:  # batched guidance: [conditional; unconditional]
            drop = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(cond.device)
            cond, text = torch.cat([cond, cond]), torch.cat([text, text])
            proprio = None if proprio is None else torch.cat([proprio, proprio])
        else:
            drop = None

        dtype = DTYPES[e.inference_dtype]
        network = self.denoise if denoiser is None else denoiser

        def denoise(x_v, x_a, sigma):
            with torch.autocast("cuda", dtype=dtype, enabled=cond.is_cuda and dtype != torch.float32):
                d_v, d_a = network(x_v, x_a, sigma, cond, text, proprio, drop)
            return d_v.float(), None if d_a is None else d_a.float()

        sigmas = edm.karras_sigmas(num_steps, e.sigma_min, e.sigma_max, e.rho).to(cond.device)
        c = self.cfg.vae.latent_channels
        video_shape = (b, self.cfg.num_frames, c, *self.cfg.latent_size)
        action_shape = (b, self.cfg.action.horizon, 7) if with_actions else None
        if e.sampler == "joint":
            return edm.euler_sample(denoise, video_shape, action_shape, sigmas, guidance, generator, cond.device)

        # decoupled: the features (and the predicted video) once, then the actions alone
        x_video = self._feature_noise(video_shape, cond.device, generator)
        if drop is not None:
            x_video = torch.cat([x_video, x_video])
        sigma_f = torch.full((x_video.shape[0],), e.feature_sigma, device=cond.device)
        with torch.autocast("cuda", dtype=dtype, enabled=cond.is_cuda and dtype != torch.float32):
            c_used, t_used, p_used = self._drop_conditions(cond, text, proprio, drop)
            d_video, features, c_noise = self._unet_pass(x_video, sigma_f, c_used, t_used)
            global_cond = self.head.condition(features, p_used, self._unet_embedding(c_noise, x_video.dtype), t_used)
        video = d_video.float() if drop is None else (d_video[b:] + guidance * (d_video[:b] - d_video[b:])).float()
        if not with_actions:
            return video, None

        def denoise_actions(_x_v, x_a, sigma):
            with torch.autocast("cuda", dtype=dtype, enabled=cond.is_cuda and dtype != torch.float32):
                return None, self._head_step(x_a, sigma, global_cond).float()

        return video, edm.euler_sample(denoise_actions, None, action_shape, sigmas, guidance, generator, cond.device)[1]
