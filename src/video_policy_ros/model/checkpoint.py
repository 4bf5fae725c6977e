"""Self-describing checkpoint folders: save, load, validate.

Layout::

    config.json          VideoPolicyConfig (cameras + order, image size, action semantics, ...)
    meta.json            CheckpointMeta: dt, data fingerprint, training step/mode, the contract
    model.safetensors    inference weights (the EMA weights when EMA is on)
    normalization.json   action / proprio min-max stats (absent after video-only training)
    text_encoder/        CLIP config + tokenizer files (CLIP text encoder only)
    training/            resume state: optimizer.pt, state.json, raw.safetensors (with EMA)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from pydantic import BaseModel, ConfigDict, ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from video_policy_ros.errors import StackError
from video_policy_ros.model.config import VideoPolicyConfig
from video_policy_ros.model.normalization import ActionNormalizer
from video_policy_ros.model.video_policy import VideoPolicyModel

FORMAT_VERSION = 1
CONFIG, META, WEIGHTS, NORMALIZATION, TEXT_ENCODER, TRAINING = (
    "config.json", "meta.json", "model.safetensors", "normalization.json", "text_encoder", "training")


class CheckpointError(StackError, ValueError):
    """A checkpoint folder is missing, incomplete, corrupt or does not fit the caller."""


class CheckpointMeta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int = FORMAT_VERSION
    dt: float  # seconds between action steps (1 / the episodes' fps)
    data_fingerprint: str
    step: int
    mode: str
    cameras: tuple[str, ...]
    image_size: tuple[int, int]
    action_representation: str
    action_horizon: int
    action_semantics: str = ("step k of a chunk is the TCP target at stamp + (k + 1) * dt: position (m) and "
                             "axis-angle (rad) in fr3_link0, then fr3_finger_joint1 (m); 'delta' relative to "
                             "the TCP pose at the observation, 'step_delta' relative to the previous step with the "
                             "gripper +1 open / -1 closed, 'absolute' relative to normalization.ref_quat")


@dataclass
class Checkpoint:
    model: VideoPolicyModel
    config: VideoPolicyConfig
    meta: CheckpointMeta
    normalizer: ActionNormalizer | None
    folder: Path


def save_checkpoint(folder: str | Path, model: VideoPolicyModel, meta: CheckpointMeta,
                    normalizer: ActionNormalizer | None, weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Write everything but the resume state. ``weights`` defaults to the model's own (pass EMA weights)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG).write_text(model.cfg.model_dump_json(indent=2))
    (folder / META).write_text(meta.model_dump_json(indent=2))
    state = model.state_dict() if weights is None else weights
    save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, str(folder / WEIGHTS))
    if normalizer is not None:
        normalizer.save(folder / NORMALIZATION)
    if model.cfg.text.kind == "clip":
        model.text_encoder.save_description(folder / TEXT_ENCODER)
    return folder


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"checkpoint file missing: {path} ({what}); point to a complete checkpoint folder "
                              f"written by 'video-policy train', or re-export it")
    return path


def read_config(folder: str | Path) -> tuple[VideoPolicyConfig, CheckpointMeta]:
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder} (pass the folder 'video-policy train --out' wrote)")
    parsed = []
    for name, cls in ((CONFIG, VideoPolicyConfig), (META, CheckpointMeta)):
        path = _require(folder / name, cls.__name__)
        try:
            parsed.append(cls.model_validate_json(path.read_text()))
        except (ValidationError, ValueError) as exc:
            raise CheckpointError(f"{path} is not a valid {cls.__name__}: {exc}; re-train or restore the file") from exc
    cfg, meta = parsed
    if meta.format_version != FORMAT_VERSION:
        raise CheckpointError(f"{folder / META}: format_version {meta.format_version}, this code reads {FORMAT_VERSION}")
    if (meta.cameras, meta.image_size) != (cfg.cameras, cfg.image_size) or meta.action_representation != cfg.action.representation:
        raise CheckpointError(f"{folder}: meta.json and config.json disagree on cameras, image size or action "
                              "representation; the checkpoint was edited by hand, restore it")
    return cfg, meta


def load_weights(model: torch.nn.Module, path: Path) -> None:
    """Strict, shape-checked load of a safetensors file into ``model``."""
    _require(path, "weights")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(f"cannot read weights {path}: {exc} (the file is corrupt or truncated; "
                              "copy it again or re-train)") from exc
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        raise CheckpointError(f"weights {path} do not fit the model of config.json: {len(missing)} missing "
                              f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(wrong)} shape "
                              f"mismatches {wrong[:3]}; the weights and config.json come from different models")
    model.load_state_dict(state)


def load_checkpoint(folder: str | Path, device: str | torch.device = "cpu",
                    expected_cameras: tuple[str, ...] | None = None, require_actions: bool = False) -> Checkpoint:
    """Load and validate a checkpoint folder; the model is in eval mode on ``device``.

    ``expected_cameras``: the cameras the caller will provide (order free); a different set
    raises. ``require_actions``: raise if the checkpoint has no action statistics.
    """
    folder = Path(folder)
    cfg, meta = read_config(folder)
    if expected_cameras is not None and set(expected_cameras) != set(cfg.cameras):
        raise CheckpointError(f"{folder} was trained on cameras {list(cfg.cameras)} but {sorted(expected_cameras)} "
                              "were given; configure those cameras or use a checkpoint trained on yours")
    normalizer = None
    if (folder / NORMALIZATION).exists():
        try:
            normalizer = ActionNormalizer.load(folder / NORMALIZATION)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{folder / NORMALIZATION} is corrupt: {exc}") from exc
        if normalizer.representation != cfg.action.representation:
            raise CheckpointError(f"{folder / NORMALIZATION} is for '{normalizer.representation}' actions, "
                                  f"config.json says '{cfg.action.representation}'")
    elif require_actions:
        raise CheckpointError(f"{folder / NORMALIZATION} missing: this checkpoint was trained video-only "
                              "(stage 1); train the action head with 'video-policy train --mode head --init "
                              f"{folder}' before using it as a policy")
    clip_folder = _require(folder / TEXT_ENCODER, "CLIP config + tokenizer") if cfg.text.kind == "clip" else None
    model = VideoPolicyModel(cfg, clip_folder=clip_folder)
    load_weights(model, folder / WEIGHTS)
    return Checkpoint(model.to(device).eval(), cfg, meta, normalizer, folder)


def save_training_state(folder: str | Path, optimizer: torch.optim.Optimizer, step: int,
                        raw_weights: dict[str, torch.Tensor] | None) -> None:
    """Resume state next to the checkpoint; ``raw_weights`` are the non-EMA weights when EMA is on."""
    d = Path(folder) / TRAINING
    d.mkdir(parents=True, exist_ok=True)
    torch.save(optimizer.state_dict(), d / "optimizer.pt")
    (d / "state.json").write_text(json.dumps({"step": step}))
    if raw_weights is not None:
        save_file({k: v.detach().contiguous().cpu() for k, v in raw_weights.items()}, str(d / "raw.safetensors"))


def load_training_state(folder: str | Path) -> tuple[dict, int, Path | None]:
    """→ (optimizer state dict, step, path of the raw weights or None)."""
    d = Path(folder) / TRAINING
    state = json.loads(_require(d / "state.json", "training step").read_text())
    opt = torch.load(_require(d / "optimizer.pt", "optimizer state"), map_location="cpu", weights_only=True)
    raw = d / "raw.safetensors"
    return opt, int(state["step"]), raw if raw.exists() else None
