"""Normalisation statistics of a converted dataset, written next to the episodes as ``stats.json``.

``state`` is the TCP pose and gripper per step ``[x, y, z, qx, qy, qz, qw, gripper]``;
``action`` is what a policy step does, from step ``t`` to ``t + 1``: position delta,
rotation delta as an axis-angle in the base frame (``q[t+1] = exp(r) q[t]``) and the
next gripper value. Each gets per-dimension min, max, mean and std. Only the small
pose arrays of each file are read, never its frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from video_policy_ros.geometry import rotation_error


def _summary(values: np.ndarray) -> dict[str, list[float]]:
    return {"min": values.min(0).tolist(), "max": values.max(0).tolist(),
            "mean": values.mean(0).tolist(), "std": values.std(0).tolist()}


def dataset_stats(files: list[Path]) -> dict:
    states, actions, video_only = [], [], 0
    for path in sorted(files):
        with np.load(path, allow_pickle=False) as archive:
            if "tcp_poses" not in archive.files:
                video_only += 1
                continue
            poses, gripper = archive["tcp_poses"], archive["gripper"]
        states.append(np.concatenate([poses, gripper[:, None]], axis=1))
        rotation = rotation_error(poses[1:, 3:], poses[:-1, 3:])
        actions.append(np.concatenate([poses[1:, :3] - poses[:-1, :3], rotation, gripper[1:, None]], axis=1))
    stats = {"episodes": len(files), "action_free_episodes": video_only, "steps_with_actions": sum(map(len, states))}
    if states:
        stats["state"] = _summary(np.concatenate(states))
        stats["action"] = _summary(np.concatenate(actions))
    return stats


def write_stats(folder: Path) -> Path:
    path = Path(folder) / "stats.json"
    path.write_text(json.dumps(dataset_stats(sorted(Path(folder).glob("*.npz"))), indent=2))
    return path
