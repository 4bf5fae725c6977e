"""EDM noise, v-prediction scalings, the loss and the Euler sampler with batched guidance.

Formulas (Karras et al. 2022, with SVD's v-prediction sign and ``c_noise``)::

    c_skip = sd^2 / (s^2 + sd^2)      c_out = -s * sd / sqrt(s^2 + sd^2)
    c_in   = 1 / sqrt(s^2 + sd^2)     c_noise = 0.25 * ln(s)
    D(x; s) = c_skip * x + c_out * F(c_in * x; c_noise)
    weight(s) = (s^2 + sd^2) / (s * sd)^2       ln(s) ~ N(p_mean, p_std^2)

One sigma per sample is shared by all frames and by the action chunk; video and
actions have their own ``sigma_data`` (hence their own scalings).
"""

from __future__ import annotations

from typing import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]


def scalings(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(B,)`` sigma → ``(c_skip, c_out, c_in, c_noise)``, each ``(B,)``."""
    sd2 = sigma_data**2
    s2 = sigma**2
    c_skip = sd2 / (s2 + sd2)
    c_out = -sigma * sigma_data / (s2 + sd2).sqrt()
    c_in = 1.0 / (s2 + sd2).sqrt()
    c_noise = 0.25 * sigma.log()
    return c_skip, c_out, c_in, c_noise


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """EDM's lambda(sigma) = (sigma^2 + sd^2) / (sigma * sd)^2, so that c_out^2 * lambda = 1."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def sample_sigma(batch: int, p_mean: float, p_std: float, device, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B,)`` training sigmas with ln(sigma) ~ N(p_mean, p_std^2)."""
    return (torch.randn(batch, device=device, generator=generator) * p_std + p_mean).exp()


def edm_loss(
    video_err: torch.Tensor,
    action_err: torch.Tensor | None,
    action_mask: torch.Tensor | None = None,
    video_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean over all per-frame and per-action-step losses (DESIGN §4).

    ``video_err`` is ``(B, F)``: weight(sigma) * per-frame MSE; ``action_err`` ``(B, K)``
    (or None in video-only training); ``action_mask`` ``(B,)`` is 0 for samples without
    actions (action-free videos in joint training), ``video_mask`` ``(B,)`` 0 for samples whose
    frames must not teach (relabelled episodes). Either term may be absent (``None``/empty).
    """
    total = video_err.new_zeros(())
    count = video_err.new_zeros(())
    logs: dict[str, float] = {}

    def add(name: str, err: torch.Tensor, mask: torch.Tensor | None) -> None:
        nonlocal total, count
        mask = torch.ones(err.shape[0], device=err.device) if mask is None else mask.float()
        masked = err * mask[:, None]
        total = total + masked.sum()
        count = count + mask.sum() * err.shape[1]
        logs[name] = float(masked.detach().sum() / (mask.sum() * err.shape[1]).clamp(min=1))

    if video_err.numel():
        add("video", video_err, video_mask)
    if action_err is not None:
        add("action", action_err, action_mask)
    loss = total / count.clamp(min=1)
    logs["loss"] = float(loss.detach())
    return loss, logs


def karras_sigmas(num_steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """``(num_steps + 1,)`` decreasing sigmas ending with 0."""
    ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv**rho, torch.zeros(1, dtype=torch.float64)]).float()


@torch.no_grad()
def euler_sample(
    denoise: Denoiser,
    video_shape: tuple[int, ...] | None,
    action_shape: tuple[int, ...] | None,
    sigmas: torch.Tensor,
    guidance: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Euler EDM sampler stepping video and actions together under one sigma.

    ``denoise(x_video, x_action, sigma)`` returns the denoised ``(D_video, D_action)``.
    With ``guidance != 1`` the batch is doubled: the first half must be read as the
    conditional and the second as the unconditional branch (the denoiser drops the
    conditions of the second half), and ``D = D_u + guidance * (D_c - D_u)``.
    Returns the final ``x_video`` ``video_shape`` and ``x_action`` ``action_shape`` (either may be None:
    not sampled, and passed to ``denoise`` as None).
    """
    def noise(shape):
        return None if shape is None else torch.randn(shape, generator=generator, device=device) * sigmas[0]

    def doubled(x):
        return None if x is None else torch.cat([x, x])

    def guided_mix(d):
        return None if d is None else d[batch:] + guidance * (d[:batch] - d[batch:])

    x_v, x_a = noise(video_shape), noise(action_shape)
    guided = guidance != 1.0
    batch = (video_shape or action_shape)[0]
    for sigma, sigma_next in zip(sigmas[:-1].tolist(), sigmas[1:].tolist()):
        s = torch.full((batch * (2 if guided else 1),), sigma, device=device)
        if guided:
            d_v, d_a = map(guided_mix, denoise(doubled(x_v), doubled(x_a), s))
        else:
            d_v, d_a = denoise(x_v, x_a, s)
        if x_v is not None:
            x_v = x_v + (sigma_next - sigma) * (x_v - d_v) / sigma
        if x_a is not None:
            x_a = x_a + (sigma_next - sigma) * (x_a - d_a) / sigma
    return x_v, x_a
