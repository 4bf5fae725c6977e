"""Periodic evaluation: action MSE on held-out samples and a predicted-video mp4."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video_policy_ros.model.dataset import EpisodeDataset, to_model_range
from video_policy_ros.model.video_policy import VideoPolicyModel


def batch_inputs(model: VideoPolicyModel, batch: dict, device,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Collated samples → clean video ``(B, F, 3, H, W)`` in [-1, 1] and the concat condition."""
    video = to_model_range(batch["frames"].to(device))
    return video, model.encode_condition(model.current_frames(video), generator)


@torch.no_grad()
def evaluate(model: VideoPolicyModel, dataset: EpisodeDataset, num_samples: int, with_actions: bool,
             video_path: Path | None = None, seed: int = 0, guidance: float | None = None) -> dict[str, float]:
    """Sample ``num_samples`` evenly spaced samples of ``dataset`` with the configured sampler.

    Returns ``action_mse`` (normalised units, samples with actions only), ``position_mm``
    (mean distance of the decoded TCP targets to the demonstrated poses, comparable across
    action encodings) and ``video_mse`` (model pixel range); writes ``video_path`` (ground
    truth above, prediction below) if given.
    ``guidance`` overrides the config's (1.0 measures the conditional model alone).
    """
    device = next(model.parameters()).device
    picks = np.linspace(0, len(dataset) - 1, min(num_samples, len(dataset))).round().astype(int)
    items = [dataset[int(i)] for i in picks]
    batch = torch.utils.data.default_collate(items)
    was_training = model.training
    model.eval()
    gen = torch.Generator(device).manual_seed(seed)
    video, cond = batch_inputs(model, batch, device, gen)
    video = video[:, model.cfg.num_lead_frames:]  # decode() drops the lead frame too
    proprio = batch["proprio"].to(device) if model.cfg.proprio else None
    latents, actions = model.sample(cond, model.encode_text(list(batch["instruction"])), proprio,
                                    guidance=guidance, with_actions=with_actions, generator=gen)
    predicted = model.decode(latents)
    model.train(was_training)
    metrics = {"video_mse": float((predicted - video).pow(2).mean())}
    mask = batch["has_actions"].to(device)
    if actions is not None and mask.any():
        err = (actions - batch["actions"].to(device)).pow(2).mean(dim=(1, 2))
        metrics["action_mse"] = float(err[mask].mean())
        metrics["position_mm"] = float(np.mean([position_error(dataset, item, chunk) for item, chunk, keep in
                                                zip(items, actions.cpu().numpy(), mask.tolist()) if keep]))
    if video_path is not None:
        write_video(video_path, video, predicted)
    return metrics


def position_error(dataset: EpisodeDataset, item: dict, actions: np.ndarray) -> float:
    """Mean distance (mm) of a normalised chunk's decoded TCP targets to the demonstrated poses."""
    poses = dataset.episodes[item["episode"]]["poses"]
    t, k = item["t"], len(actions)
    targets, _ = dataset.normalizer.decode_chunk(actions, poses[t])
    truth = poses[np.minimum(np.arange(t + 1, t + 1 + k), len(poses) - 1), :3]
    return float(1000 * np.linalg.norm(targets[:, :3] - truth, axis=1).mean())


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """``(..., 3, H, W)`` in [-1, 1] → ``(..., H, W, 3)`` uint8."""
    return ((frames.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def write_video(path: Path, truth: torch.Tensor, predicted: torch.Tensor, min_height: int = 128) -> Path:
    """mp4 of ``(B, F, 3, H, W)`` clips: samples side by side, truth on top of prediction."""
    import imageio.v2 as imageio

    grid = torch.cat([torch.cat(list(truth), dim=-1), torch.cat(list(predicted), dim=-1)], dim=-2)  # (F, 3, 2H, B*W)
    scale = max(1, -(-min_height // grid.shape[-2]))
    frames = to_uint8(grid).repeat(scale, axis=1).repeat(scale, axis=2)
    # libx264 wants even sizes and favours multiples of 16
    pad_h, pad_w = (-frames.shape[1]) % 16, (-frames.shape[2]) % 16
    frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimsave(path, list(frames), fps=4, macro_block_size=16)
    return path
