"""``video-policy train-bc``: the behaviour-cloning baseline on the Video Policy's episodes.

    video-policy train-bc --data data/demos --out runs/bc --max-minutes 9

Frames are resized once and kept in memory as uint8; each step draws a random batch,
shifts the images by a few pixels (the usual BC augmentation) and regresses the
normalised action chunk. The checkpoint is written every ``--save-every`` steps and
at the end, so a stopped run leaves a usable one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from tqdm import tqdm

from video_policy_ros.config import describe_validation_error
from video_policy_ros.data.episode import Episode, EpisodeError, fingerprint, list_episodes
from video_policy_ros.model.bc import BCConfig, BCModel, save_bc, word_ids, words
from video_policy_ros.data.frames import parse_crop, resize_frames
from video_policy_ros.model.dataset import to_model_range
from video_policy_ros.model.train import pick_device
from video_policy_ros.model.normalization import ActionNormalizer, Trajectory


@dataclass
class BCSamples:
    """Every (episode, frame) of the training data, as tensors."""

    images: torch.Tensor  # (N, cams, 3, H, W) uint8
    proprio: torch.Tensor  # (N, 7)
    actions: torch.Tensor  # (N, K, 7)
    ids: torch.Tensor  # (N, L) word ids

    def __len__(self) -> int:
        return self.images.shape[0]

    def batch(self, index: torch.Tensor, shift: int) -> tuple[torch.Tensor, ...]:
        images = to_model_range(self.images[index])
        if shift:
            images = random_shift(images, shift)
        return images, self.proprio[index], self.ids[index], self.actions[index]


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """Shift each image of ``(B, cams, 3, H, W)`` by up to ``pad`` pixels (edges replicated)."""
    b, cams, c, h, w = images.shape
    flat = F.pad(images.reshape(b * cams, c, h, w), (pad,) * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * pad + 1, (2, b * cams))
    crops = [flat[i, :, y:y + h, x:x + w] for i, (x, y) in enumerate(zip(dx.tolist(), dy.tolist()))]
    return torch.stack(crops).reshape(b, cams, c, h, w)


@dataclass
class Demo:
    """One demonstration with its frames already at the model's size (the full-size frames are not kept)."""

    instruction: str
    fps: float
    images: torch.Tensor  # (T, cams, 3, H, W) uint8
    poses: np.ndarray  # (T, 7)
    gripper: np.ndarray  # (T,)
    labels: tuple[np.ndarray, np.ndarray] | None  # expert chunks per frame (DAgger), or None

    @property
    def trajectory(self) -> Trajectory:
        return Trajectory(self.poses, self.gripper, self.labels)


def load_samples(demos: list[Demo], cfg: BCConfig, normalizer: ActionNormalizer) -> BCSamples:
    images, proprio, actions, instructions = [], [], [], []
    for demo in demos:
        steps = len(demo.poses) - 1  # the last frame has no next action
        images.append(demo.images[:steps])
        proprio.append(normalizer.encode_proprio(demo.poses[:steps], demo.gripper[:steps]))
        actions.extend(normalizer.encode_chunk(*demo.trajectory, t=t, horizon=cfg.horizon) for t in range(steps))
        instructions.extend([demo.instruction] * steps)
    return BCSamples(torch.cat(images), torch.from_numpy(np.concatenate(proprio)),
                     torch.from_numpy(np.stack(actions)), word_ids(cfg, instructions))


def read_demos(data: list[Path], cfg: BCConfig) -> tuple[list[Demo], list[Path]]:
    """The episodes with actions in the ``data`` folders, cropped and resized one file at a time (memory stays small)."""
    demos, files = [], []
    for path in tqdm(list_episodes(*data), desc="loading episodes", unit="file"):
        ep = Episode.load(path)
        if not ep.has_actions or len(ep) < 2:
            continue
        missing = [c for c in cfg.cameras if c not in ep.frames]
        if missing:
            raise EpisodeError(f"{path}: cameras {missing} missing (it has {list(ep.frames)}); pass --cameras")
        images = torch.stack([resize_frames(ep.frames[c], cfg.image_size, cfg.crops.get(c)) for c in cfg.cameras], dim=1)
        labels = (ep.expert_poses, ep.expert_gripper) if ep.expert_poses is not None else None
        demos.append(Demo(ep.instruction, ep.fps, images, ep.tcp_poses, ep.gripper, labels))
        files.append(path)
    if not demos:
        raise EpisodeError(f"{', '.join(map(str, data))}: no episode with actions; BC needs demonstrations "
                           "(video-policy demos)")
    return demos, files


def train_bc(data: Path | list[Path], out: Path, cfg: BCConfig, steps: int, max_minutes: float, batch_size: int = 32,
             lr: float = 1e-3, val_episodes: int = 2, save_every: int = 500, seed: int = 0,
             device: str = "auto") -> Path:
    torch.manual_seed(seed)
    device = pick_device(device)
    demos, files = read_demos(data if isinstance(data, list) else [data], cfg)
    val_count = min(val_episodes, len(demos) - 1)
    train_eps, val_eps = demos[:len(demos) - val_count], demos[len(demos) - val_count:]
    cfg = cfg.model_copy(update={
        "vocabulary": tuple(sorted({w for demo in demos for w in words(demo.instruction)})),
        "dt": 1.0 / demos[0].fps, "data_fingerprint": fingerprint(files),
    })
    normalizer = ActionNormalizer.fit("delta", [demo.trajectory for demo in train_eps], cfg.horizon)
    train, val = load_samples(train_eps, cfg, normalizer), (load_samples(val_eps, cfg, normalizer) if val_eps else None)
    model = BCModel(cfg).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps, eta_min=lr * 0.05)
    print(f"BC: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {len(train)} training samples "
          f"from {len(train_eps)} episodes, on {device}; held out for validation (--val-episodes): "
          f"{', '.join(f.name for f in files[len(train_eps):]) or 'none'}")
    deadline = time.monotonic() + max_minutes * 60
    step, progress = 0, tqdm(total=steps, desc="train-bc", unit="step")
    while step < steps and time.monotonic() < deadline:
        model.train()
        images, proprio, ids, target = (t.to(device) for t in train.batch(torch.randint(len(train), (batch_size,)), shift=4))
        loss = F.mse_loss(model(images, proprio, ids), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        progress.update()
        progress.set_postfix(loss=f"{loss.item():.4f}")
        if step % save_every == 0:
            _save(out, model, cfg, normalizer, step)
    progress.close()
    path = _save(out, model, cfg, normalizer, step)
    if val is not None:
        print(f"validation MSE (normalised actions, {len(val_eps)} held-out episodes): {validation_loss(model, val):.4f}")
    print(f"{step} steps; BC checkpoint: {path.resolve()}")
    return path


def _save(out: Path, model: BCModel, cfg: BCConfig, normalizer: ActionNormalizer, step: int) -> Path:
    model.cfg = cfg.model_copy(update={"trained_steps": step})
    return save_bc(out, model, normalizer)


@torch.no_grad()
def validation_loss(model: BCModel, samples: BCSamples, batch_size: int = 256) -> float:
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(samples), batch_size):
        index = torch.arange(start, min(start + batch_size, len(samples)))
        images, proprio, ids, target = (t.to(device) for t in samples.batch(index, shift=0))
        total += F.mse_loss(model(images, proprio, ids), target, reduction="sum").item()
    return total / (len(samples) * target.shape[1] * target.shape[2])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="folder(s) of Episode .npz files (video-policy demos, DAgger rounds)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps (the learning rate decays over them)")
    parser.add_argument("--max-minutes", type=float, default=9.0, help="stop after this long even if steps remain")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--cameras", default="front,wrist", help="comma-separated, in the model's order")
    parser.add_argument("--image-size", type=int, nargs=2, default=(48, 64), metavar=("H", "W"))
    parser.add_argument("--crop", action="append", default=[], metavar="CAMERA=TOP,LEFT,BOTTOM,RIGHT",
                        help="a camera's region of interest, as fractions of its frame, cut before the resize "
                             "(e.g. front=0.35,0.1,0.95,0.9); repeat for more cameras")
    parser.add_argument("--horizon", type=int, default=16, help="action steps per chunk")
    parser.add_argument("--val-episodes", type=int, default=2, help="episodes held out for the validation loss")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        cfg = BCConfig(cameras=tuple(c.strip() for c in args.cameras.split(",")), image_size=tuple(args.image_size),
                       crops=dict(parse_crop(text) for text in args.crop), horizon=args.horizon)
        train_bc(args.data, args.out, cfg, args.steps, args.max_minutes, args.batch_size, args.lr,
                 args.val_episodes, args.save_every, device=args.device)
    except ValidationError as exc:
        print(f"error: {describe_validation_error(exc, 'train-bc')}", file=sys.stderr)
        return 2
    except (EpisodeError, ValueError) as exc:  # ValueError: a malformed --crop
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
