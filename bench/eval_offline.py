"""Offline action error of checkpoints on the held-out episodes of a demo folder (the ablation metric).

    PYTHONPATH=src python bench/eval_offline.py --data /tmp/model_demos runs/a runs/b [--samples 16] [--threads 2]

Held out: the same last ``train.val_episodes`` episodes with actions that ``video-policy train``
kept out. Prints, per checkpoint, the sampled chunks' MSE in normalised units (comparable
only within one action encoding) and the mean distance of the decoded TCP targets to the
demonstration (mm, comparable across encodings), over evenly spaced samples, seed 0;
and, for scale, the error of holding the current pose over the same samples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from video_policy_ros.data.episode import list_episodes
from video_policy_ros.model.checkpoint import load_checkpoint
from video_policy_ros.model.dataset import EpisodeDataset
from video_policy_ros.model.evaluate import evaluate
from video_policy_ros.model.train import held_out_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = list_episodes(args.data)
    for folder in args.checkpoints:
        ckpt = load_checkpoint(folder, require_actions=True)
        _, val = held_out_split(files, ckpt.config.train.val_episodes)
        dataset = EpisodeDataset(val, ckpt.config, ckpt.normalizer)
        m = evaluate(ckpt.model, dataset, args.samples, with_actions=True)
        picks = np.linspace(0, len(dataset) - 1, min(args.samples, len(dataset))).round().astype(int)
        hold = np.mean([hold_error(dataset, *dataset.index[i], ckpt.config.action.horizon) for i in picks])
        print(f"{folder}: action_mse {m['action_mse']:.4f} ({ckpt.config.action.representation}), "
              f"position error {m['position_mm']:.1f} mm, video_mse {m['video_mse']:.4f}, "
              f"{len(dataset)} held-out samples, step {ckpt.meta.step} ({ckpt.meta.mode}); holding still: {hold:.1f} mm")


def hold_error(dataset: EpisodeDataset, episode: int, t: int, horizon: int) -> float:
    """Mean distance (mm) of the chunk's demonstrated positions to the position at ``t``."""
    poses = dataset.episodes[episode]["poses"][:, :3]
    future = poses[np.minimum(np.arange(t + 1, t + 1 + horizon), len(poses) - 1)]
    return float(1000 * np.linalg.norm(future - poses[t], axis=1).mean())


if __name__ == "__main__":
    main()
