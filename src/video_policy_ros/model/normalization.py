"""Actions and proprioception ↔ the model's normalised space, with saveable min-max stats.

An action step is ``[pos - ref_pos (3), rotvec(q * ref_q^-1) (3), gripper (1)]``:
``delta`` (ours) uses the TCP pose at the observation as the reference and the gripper
width in m; ``absolute`` uses position 0 and the data set's mean orientation
``ref_quat`` (an absolute axis-angle would flip sign near the FR3's usual gripper-down
orientation, an angle of pi); ``step_delta`` (the official encoding) uses the previous
step's pose as the reference, the gripper as +1 open / -1 closed, and zeros past the
episode's end. Each of the 7 values is min-max normalised to [-1, 1].

A chunk's targets are where the arm went next (the recorded future poses) or, for states
an expert labelled (DAgger), the chunk the expert planned from there (``labels``: per frame
``(K, 7)`` poses and ``(K,)`` gripper).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from video_policy_ros.geometry import apply_delta, rotation_error
from video_policy_ros.model import pose

class Trajectory(NamedTuple):
    """One episode's actions: ``poses (T, 7)``, ``gripper (T,)`` and optional expert ``labels``
    (``(T, K, 7)`` poses, ``(T, K)`` gripper: the chunk an expert planned from each frame)."""

    poses: np.ndarray
    gripper: np.ndarray
    labels: tuple[np.ndarray, np.ndarray] | None = None


_MIN_RANGE = 1e-4  # a value that never changes (e.g. a gripper never used) still maps to a finite range


@dataclass
class ActionNormalizer:
    representation: str  # "delta" | "absolute"
    action_min: np.ndarray  # (7,)
    action_max: np.ndarray  # (7,)
    proprio_min: np.ndarray  # (7,)
    proprio_max: np.ndarray  # (7,)
    ref_quat: np.ndarray  # (4,) xyzw
    gripper_open: float = 0.04  # step_delta: the width that +1 decodes to (the data's widest)

    # -- fitting ------------------------------------------------------------------------------

    @classmethod
    def fit(cls, representation: str, trajectories: list[Trajectory], horizon: int) -> "ActionNormalizer":
        """Stats over every chunk of every trajectory."""
        if not trajectories:
            raise ValueError("no episode with actions: action statistics need at least one")
        trajectories = [Trajectory(*t) for t in trajectories]
        ref_quat = pose.mean_quat(np.concatenate([t.poses[:, 3:] for t in trajectories]))
        gripper_open = float(max(t.gripper.max() for t in trajectories))
        stub = cls(representation, np.full(7, -1.0), np.ones(7), np.full(7, -1.0), np.ones(7), ref_quat, gripper_open)
        actions = np.concatenate([stub.raw_chunk(*tr, t=t, horizon=horizon)
                                  for tr in trajectories for t in range(len(tr.poses))])
        proprio = np.concatenate([stub.raw_proprio(tr.poses, tr.gripper) for tr in trajectories])
        return cls(representation, *_bounds(actions), *_bounds(proprio), ref_quat, gripper_open)

    # -- raw (physical) values ------------------------------------------------------------------

    def reference(self, current_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.representation == "delta":
            return current_pose[:3], current_pose[3:]
        return np.zeros(3), self.ref_quat

    def raw_chunk(self, poses: np.ndarray, gripper: np.ndarray, labels: tuple[np.ndarray, np.ndarray] | None = None, *,
                  t: int, horizon: int) -> np.ndarray:
        """The chunk from frame ``t`` → ``(K, 7)`` un-normalised actions. Its targets are ``labels[t]`` when
        given, else the recorded future (step k is the pose at frame ``t + k + 1``). Past the targets' end
        the last one is held (step_delta: zeros)."""
        if labels is not None:
            targets, target_gripper = labels[0][t][:horizon], labels[1][t][:horizon]
        else:
            targets, target_gripper = poses[t + 1:t + 1 + horizon], gripper[t + 1:t + 1 + horizon]
        if self.representation != "step_delta":
            if not len(targets):  # the last frame: hold it
                targets, target_gripper = poses[t:t + 1], gripper[t:t + 1]
            idx = np.minimum(np.arange(horizon), len(targets) - 1)
            return pose.poses_to_actions(targets[idx], target_gripper[idx], *self.reference(poses[t]))
        n = len(targets)
        steps = np.zeros((horizon, 7))
        previous = np.concatenate([poses[t:t + 1], targets[:-1]])
        steps[:n, :3] = targets[:, :3] - previous[:, :3]
        steps[:n, 3:6] = rotation_error(targets[:, 3:], previous[:, 3:])
        steps[:n, 6] = np.where(target_gripper > self.gripper_open / 2, 1.0, -1.0)
        return steps

    def raw_proprio(self, poses: np.ndarray, gripper: np.ndarray) -> np.ndarray:
        """``(T, 7)`` poses, ``(T,)`` gripper → ``(T, 7)`` [pos, rotvec relative to ref_quat, gripper]."""
        return pose.poses_to_actions(poses, gripper, np.zeros(3), self.ref_quat)

    # -- normalised ---------------------------------------------------------------------------

    def encode_chunk(self, poses: np.ndarray, gripper: np.ndarray, labels: tuple[np.ndarray, np.ndarray] | None = None,
                     *, t: int, horizon: int) -> np.ndarray:
        return _to_unit(self.raw_chunk(poses, gripper, labels, t=t, horizon=horizon), self.action_min, self.action_max)

    def decode_chunk(self, actions: np.ndarray, current_pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised ``(K, 7)`` → absolute poses ``(K, 7)`` in fr3_link0 and gripper ``(K,)``."""
        raw = _from_unit(np.clip(actions, -1.0, 1.0), self.action_min, self.action_max)
        current = np.asarray(current_pose, dtype=np.float64)
        if self.representation != "step_delta":
            return pose.actions_to_poses(raw, *self.reference(current))
        poses = np.empty((len(raw), 7))
        for k, step in enumerate(raw):  # each step moves on from the previous target
            poses[k] = apply_delta(current, step[:6])
            current = poses[k]
        return poses, np.where(raw[:, 6] > 0, self.gripper_open, 0.0)

    def encode_proprio(self, poses: np.ndarray, gripper: np.ndarray) -> np.ndarray:
        return _to_unit(self.raw_proprio(np.atleast_2d(poses), np.atleast_1d(gripper)), self.proprio_min, self.proprio_max)

    # -- persistence --------------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ActionNormalizer":
        arrays = {k: np.asarray(d[k], dtype=np.float64) for k in
                  ("action_min", "action_max", "proprio_min", "proprio_max", "ref_quat")}
        shapes = {k: v.shape for k, v in arrays.items()}
        if any(s != ((4,) if k == "ref_quat" else (7,)) for k, s in shapes.items()):
            raise ValueError(f"normalisation stats have wrong shapes: {shapes}")
        # gripper_open is absent from stats written before step_delta existed
        return cls(representation=d["representation"], **arrays, gripper_open=float(d.get("gripper_open", 0.04)))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "ActionNormalizer":
        return cls.from_dict(json.loads(Path(path).read_text()))


def _bounds(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = values.min(axis=0), values.max(axis=0)
    mid, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, _MIN_RANGE / 2)
    return mid - half, mid + half


def _to_unit(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (2.0 * (x - lo) / (hi - lo) - 1.0).astype(np.float32)


def _from_unit(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) + 1.0) / 2.0 * (hi - lo) + lo
