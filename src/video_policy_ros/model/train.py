"""``video-policy train``: two stages (the default, as the paper), one of them, or joint training.

    video-policy train --data data/demos --out runs/tiny --steps 2000 --head-steps 2000   # OUT/stage1, then OUT
    video-policy train --data data/demos --out runs/tiny-video --mode video --steps 2000
    video-policy train --data data/demos --out runs/tiny-head --mode head --init runs/tiny-video
    video-policy train --data data/demos --out runs/tiny --mode joint --resume   # continue in --out
    torchrun --nproc_per_node 4 -m video_policy_ros.cli train --data data/demos --out runs/tiny   # DDP, 4 processes

Under ``torchrun`` (``WORLD_SIZE`` > 1) each process trains on its share of every global batch
(``--batch-size`` is the global batch) with DistributedDataParallel; rank 0 alone writes
checkpoints, evaluations, ``loss.csv`` and the progress bar. A run resumes with any world size.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from video_policy_ros.data.episode import Episode, fingerprint, list_episodes
from video_policy_ros.errors import StackError
from video_policy_ros.model import checkpoint as ckpt
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.dataset import EpisodeDataset, colour_jitter, to_model_range
from video_policy_ros.model.evaluate import evaluate
from video_policy_ros.model.normalization import ActionNormalizer
from video_policy_ros.model.pretrained import load_pretrained
from video_policy_ros.model.video_policy import DTYPES, MODES, VideoPolicyModel

TWO_STAGE = "two-stage"


class TrainingError(StackError, ValueError):
    """Options or data that cannot train; the message says what to change."""


@dataclass
class TrainOptions:
    data: Path | list[Path]  # one folder of episodes, or several (demonstrations + DAgger rounds)
    out: Path
    mode: str = TWO_STAGE
    steps: int = 1000
    batch_size: int | None = None  # None: the config's train.batch_size
    head_steps: int | None = None  # two-stage: stage 2's steps (None: ``steps``)
    config: VideoPolicyConfig | None = None  # None: the tiny preset on the data's cameras
    init: Path | None = None  # start from this checkpoint's weights (stage 2 from stage 1)
    resume: bool = False  # continue the run in ``out``
    svd_folder: Path | None = None
    clip_folder: Path | None = None
    eval_every: int = 200
    save_every: int = 500
    seed: int = 0
    device: str = "auto"
    max_minutes: float | None = None  # stop (and save) after this long even if steps remain
    progress: bool = True
    val_episodes: int | None = None  # held out for evaluation (None: the config's train.val_episodes)


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job; world 1 is the one-process path."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> "Ranks":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        return cls(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))

    def join(self, device: torch.device) -> None:
        """Join the job's process group once (NCCL on GPUs, gloo on CPUs); torchrun set the rendezvous."""
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")

    def agree(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank (a wall-clock deadline must stop all of them at one step)."""
        if self.world == 1:
            return flag
        value = torch.tensor([float(flag)])
        dist.broadcast(value, 0)
        return bool(value.item())

    def mean(self, value: float) -> float:
        if self.world == 1:
            return value
        total = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(total)
        return float(total.item()) / self.world


class TrainingLoss(torch.nn.Module):
    """``training_loss`` as ``forward``, so that DistributedDataParallel sees the step and syncs its gradients."""

    def __init__(self, model: VideoPolicyModel, mode: str):
        super().__init__()
        self.model, self.mode = model, mode

    def forward(self, latents, cond, instructions, actions, has_actions, proprio, has_video):
        with torch.set_grad_enabled(self.mode != "head"):  # the text encoder is part of the video model
            text = self.model.encode_text(list(instructions))
        return self.model.training_loss(latents, cond, text, actions, has_actions, proprio, self.mode,
                                        video_mask=has_video)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def parameter_groups(model: VideoPolicyModel, mode: str) -> list[dict]:
    """Stage 1 trains the video model, stage 2 only the head, joint both, each at its own
    learning rate (``train.lr``, ``train.head_lr``); the VAE and a frozen text tower never train."""
    text = model.text_encoder
    video_part = list(model.unet.parameters())
    video_part += list(text.parameters()) if model.cfg.text.trainable else list(text.proj.parameters())
    video = {"params": video_part, "lr": model.cfg.train.lr}
    head = {"params": list(model.head.parameters()), "lr": model.cfg.train.head_lr}
    groups = {"video": [video], "head": [head], "joint": [video, head]}[mode]
    return [g for g in groups if g["params"]]


def held_out_split(files: list[Path], val_count: int) -> tuple[list[Path], list[Path]]:
    """Hold out the last ``val_count`` episodes with actions (if at least one remains for training); not
    relabelled ones, whose frames cannot score a predicted video."""
    with_actions = [f for f in files if (ep := Episode.load(f)).has_actions and not ep.relabelled] if val_count > 0 else []
    if len(with_actions) <= val_count:
        return files, with_actions
    val = with_actions[-val_count:]
    return [f for f in files if f not in val], val


def _amp_dtype(device: torch.device, name: str) -> torch.dtype | None:
    """CUDA autocast dtype for ``train.amp_dtype`` (None on the CPU)."""
    if device.type != "cuda":
        return None
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[name]


def _build(opts: TrainOptions, files: list[Path]) -> tuple[VideoPolicyModel, ActionNormalizer | None, int]:
    """Model (fresh, --init or --resume), normaliser and the step to start from."""
    if opts.resume:
        loaded = ckpt.load_checkpoint(opts.out)
        return loaded.model.train(), loaded.normalizer, loaded.meta.step
    if opts.init is not None:
        loaded = ckpt.load_checkpoint(opts.init)
        # stage 2 may put another head (action encoding, sampler) on a stage-1 video model
        head_free = {"head": True, "action": True, "proprio": True,
                     "edm": {"sampler", "feature_sigma", "feature_noise_seed"}}
        free: dict = {"train": True} | (head_free if opts.mode == "head" else {})
        if opts.config is not None and opts.config.model_dump(exclude=free) != loaded.config.model_dump(exclude=free):
            raise TrainingError(f"--config differs from the config of --init {opts.init} beyond its {sorted(free)} "
                             "sections (stage 2 may change head, action, proprio, edm.sampler, edm.feature_sigma and "
                             "edm.feature_noise_seed)")
        model = loaded.model if opts.config is None else _with_config(loaded.model, opts.config)
        return model.train(), None, 0
    cfg = opts.config or VideoPolicyConfig.tiny(cameras=Episode.load(files[0]).camera_names)
    return load_pretrained(cfg, opts.svd_folder, opts.clip_folder).train(), None, 0


def _with_config(model: VideoPolicyModel, cfg: VideoPolicyConfig) -> VideoPolicyModel:
    """``model``'s weights under ``cfg``; a head of another architecture starts from scratch."""
    fresh = VideoPolicyModel(cfg)
    state = model.state_dict()
    if cfg.head != model.cfg.head or cfg.proprio != model.cfg.proprio:  # the head's inputs differ
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        state |= {k: v for k, v in fresh.state_dict().items() if k.startswith("head.")}
    fresh.load_state_dict(state)
    return fresh


def train(opts: TrainOptions) -> Path:
    """Run training; returns the checkpoint folder (``opts.out``). Two-stage training writes
    stage 1 (video) to ``out/stage1`` and stage 2 (head, frozen U-Net) from it to ``out``."""
    if opts.mode == TWO_STAGE:
        if opts.resume:
            raise TrainingError("two-stage training cannot resume: resume one stage with --mode video or --mode head")
        head_steps = opts.steps if opts.head_steps is None else opts.head_steps
        started = time.monotonic()
        minutes = None if opts.max_minutes is None else opts.max_minutes * opts.steps / (opts.steps + head_steps)
        stage1 = replace(opts, mode="video", out=opts.out / "stage1", max_minutes=minutes)
        train(stage1)
        left = None if opts.max_minutes is None else opts.max_minutes - (time.monotonic() - started) / 60
        return train(replace(opts, mode="head", steps=head_steps, init=stage1.out, config=None, max_minutes=left))
    if opts.mode not in MODES:
        raise TrainingError(f"mode must be one of {(TWO_STAGE, *MODES)}")
    ranks = Ranks.from_env()
    torch.manual_seed(opts.seed)
    random.seed(opts.seed)
    np.random.seed(opts.seed)
    device = pick_device(opts.device, ranks.local_rank)
    ranks.join(device)
    data = opts.data if isinstance(opts.data, list) else [opts.data]
    files = list_episodes(*data)
    model, normalizer, start = _build(opts, files)
    if ranks.world > 1:  # the same initial weights (DDP broadcasts rank 0's), each rank its own noise from here
        torch.manual_seed(opts.seed + 1 + ranks.rank)
    cfg = model.cfg
    val_count = cfg.train.val_episodes if opts.val_episodes is None else opts.val_episodes
    train_files, val_files = held_out_split(files, val_count)
    if ranks.main:  # a held-out episode is not trained on: say which, so a memorisation run cannot miss it
        held_out = ", ".join(f.name for f in val_files if f not in train_files) or "none"
        tqdm.write(f"{opts.mode}: {len(train_files)} training episodes; held out for evaluation: {held_out} "
                   "(--val-episodes)")
    train_set = EpisodeDataset(train_files, cfg, None, require_actions=opts.mode == "head",
                               require_video=opts.mode == "video")
    if normalizer is None and train_set.trajectories():
        normalizer = ActionNormalizer.fit(cfg.action.representation, train_set.trajectories(), cfg.action.horizon)
    if opts.mode != "video" and normalizer is None:
        raise TrainingError(f"mode '{opts.mode}' needs episodes with actions in {', '.join(map(str, data))}")
    train_set.normalizer = normalizer
    val_set = EpisodeDataset(val_files, cfg, normalizer) if val_files else None
    model.to(device)
    groups = parameter_groups(model, opts.mode)
    params = [p for g in groups for p in g["params"]]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    model.train()  # again, now that the frozen parts are known: they run without dropout
    t = cfg.train
    if t.gradient_checkpointing and opts.mode != "head":
        model.unet.enable_gradient_checkpointing()
    optimizer_cls = torch.optim.Adam if t.optimizer == "adam" else torch.optim.AdamW
    optimizer = optimizer_cls(groups, weight_decay=t.weight_decay)
    ema = None if t.ema_decay is None else {n: p.detach().clone() for n, p in model.state_dict().items()}
    if opts.resume:
        opt_state, start, raw = ckpt.load_training_state(opts.out)
        optimizer.load_state_dict(opt_state)
        if raw is not None:  # model.safetensors held the EMA weights; continue from the raw ones
            ckpt.load_weights(model, raw)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (start + s + 1) / max(1, t.warmup_steps)))
    amp_dtype = _amp_dtype(device, t.amp_dtype)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    data_fp = fingerprint(files)
    dt = 1.0 / Episode.load(files[0]).fps
    gen = torch.Generator().manual_seed(opts.seed + start + 1_000_003 * ranks.rank)
    batch_size = opts.batch_size or t.batch_size
    if batch_size % ranks.world:
        raise TrainingError(f"the global batch of {batch_size} does not split over {ranks.world} processes: "
                         f"pass a --batch-size that is a multiple of {ranks.world}")
    sampler = None
    if ranks.world > 1:
        sampler = torch.utils.data.DistributedSampler(train_set, ranks.world, ranks.rank, shuffle=True, seed=opts.seed + start)
    loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size // ranks.world, shuffle=sampler is None,
                                         sampler=sampler, drop_last=False, generator=gen if sampler is None else None)

    def epochs():
        for epoch in itertools.count():
            if sampler is not None:
                sampler.set_epoch(epoch)
            yield from loader

    batches = epochs()
    step_loss = TrainingLoss(model, opts.mode)
    if ranks.world > 1:
        step_loss = torch.nn.parallel.DistributedDataParallel(step_loss, [device] if device.type == "cuda" else None)
    loss_log = opts.out / "loss.csv"
    if ranks.main and not (opts.resume and loss_log.exists()):
        opts.out.mkdir(parents=True, exist_ok=True)
        loss_log.write_text("step,loss\n")

    def save(step: int) -> None:
        if not ranks.main:
            return
        meta = ckpt.CheckpointMeta(dt=dt, data_fingerprint=data_fp, step=step, mode=opts.mode, cameras=cfg.cameras,
                                   image_size=cfg.image_size, action_representation=cfg.action.representation,
                                   action_horizon=cfg.action.horizon)
        ckpt.save_checkpoint(opts.out, model, meta, normalizer, weights=ema)
        ckpt.save_training_state(opts.out, optimizer, step, model.state_dict() if ema is not None else None)

    def run_eval(step: int) -> None:
        if val_set is None or not ranks.main:
            return
        with _ema_weights(model, ema):
            path = opts.out / "eval" / f"step_{step:06d}.mp4"
            metrics = evaluate(model, val_set, t.eval_samples, opts.mode != "video", path, opts.seed)
        tqdm.write(f"eval step {step}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) + f" | video {path}")

    deadline = None if opts.max_minutes is None else time.monotonic() + opts.max_minutes * 60
    bar = tqdm(range(start, opts.steps), initial=start, total=opts.steps, disable=not (opts.progress and ranks.main),
               desc=opts.mode)
    logs: dict[str, float] = {}
    for step in bar:
        batch = next(batches)
        video = to_model_range(batch["frames"].to(device))
        lead = None if cfg.lead_camera is None else cfg.cameras.index(cfg.lead_camera)
        video = colour_jitter(video, len(cfg.cameras), t, gen, lead)
        with torch.no_grad():
            latents = model.encode_video(video)
            cond = model.encode_condition(model.current_frames(video), gen)
        with torch.autocast("cuda", dtype=amp_dtype or torch.float16, enabled=amp_dtype is not None):
            proprio = batch["proprio"].to(device) if cfg.proprio else None
            loss, logs = step_loss(latents, cond, batch["instruction"], batch["actions"].to(device),
                                   batch["has_actions"].to(device), proprio, batch["has_video"].to(device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        if ema is not None:
            _ema_update(ema, model, t.ema_decay)
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
        done = step + 1
        global_loss = ranks.mean(float(loss.detach()))  # the loss of the whole global batch
        if ranks.main:
            with loss_log.open("a") as log:
                log.write(f"{done},{global_loss:.6f}\n")
        if opts.eval_every and done % opts.eval_every == 0:
            run_eval(done)
        if done % opts.save_every == 0 or done == opts.steps:
            save(done)
        elif ranks.agree(deadline is not None and time.monotonic() > deadline):
            save(done)
            if ranks.main:
                tqdm.write(f"{opts.mode}: stopped after {done} of {opts.steps} steps (--max-minutes)")
            break
    if start >= opts.steps:
        save(start)
    if ranks.world > 1:
        dist.barrier()  # the checkpoint is on disk before any rank goes on (two-stage: stage 2 loads it)
    if ranks.main:
        tqdm.write(f"checkpoint: {opts.out}")
    return opts.out


@torch.no_grad()
def _ema_update(ema: dict[str, torch.Tensor], model: torch.nn.Module, decay: float) -> None:
    for name, value in model.state_dict().items():
        if value.dtype.is_floating_point:
            ema[name].lerp_(value, 1.0 - decay)
        else:
            ema[name].copy_(value)


@contextlib.contextmanager
def _ema_weights(model: torch.nn.Module, ema: dict[str, torch.Tensor] | None):
    """Evaluate with the EMA weights, then restore the raw ones."""
    if ema is None:
        yield
        return
    raw = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(ema)
    try:
        yield
    finally:
        model.load_state_dict(raw)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, nargs="+", required=True,
                        help="folder(s) of Episode .npz files (e.g. demonstrations and DAgger rounds)")
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    parser.add_argument("--mode", choices=(TWO_STAGE, *MODES), default=TWO_STAGE,
                        help="two-stage (the paper's): video into OUT/stage1, then head into OUT; video: stage 1 "
                             "(action-free episodes welcome); head: stage 2, frozen U-Net; joint: both at once")
    parser.add_argument("--config", type=Path, help="YAML VideoPolicyConfig ('preset: tiny|paper' + overrides); "
                                                    "default: the tiny preset on the data's cameras")
    parser.add_argument("--steps", type=int, default=1000, help="total optimiser steps (including resumed ones)")
    parser.add_argument("--head-steps", type=int, help="two-stage: steps of stage 2 (default: --steps)")
    parser.add_argument("--batch-size", type=int, help="default: the config's train.batch_size")
    parser.add_argument("--init", type=Path, help="start from this checkpoint's weights (stage 2 from stage 1)")
    parser.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    parser.add_argument("--svd-folder", type=Path, help="local diffusers SVD(-XT) folder (unet/, vae/) to initialise from")
    parser.add_argument("--clip-folder", type=Path, help="local CLIP text model folder (paper config)")
    parser.add_argument("--eval-every", type=int, default=200, help="steps between evaluations (0: never)")
    parser.add_argument("--save-every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--max-minutes", type=float,
                        help="stop and save after this long even if steps remain (two-stage: split by steps)")
    parser.add_argument("--val-episodes", type=int,
                        help="episodes held out from training for --eval-every "
                             "(default: the config's train.val_episodes)")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.resume and args.init:
        raise TrainingError("--resume and --init are exclusive: --resume continues --out, --init starts a new run from a checkpoint")
    config = VideoPolicyConfig.from_yaml(args.config) if args.config else None
    try:
        train(TrainOptions(data=args.data, out=args.out, mode=args.mode, steps=args.steps, batch_size=args.batch_size,
                           head_steps=args.head_steps,
                           config=config, init=args.init, resume=args.resume, svd_folder=args.svd_folder,
                           clip_folder=args.clip_folder, eval_every=args.eval_every, save_every=args.save_every,
                           seed=args.seed, device=args.device, max_minutes=args.max_minutes,
                           val_episodes=args.val_episodes))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0
