"""Targets on every face of a workspace box (the speed cap and straight line are checked toward each)."""

from __future__ import annotations

import numpy as np

from video_policy_ros.config import WorkspaceConfig


def face_targets(workspace: WorkspaceConfig, inset: float) -> dict[str, np.ndarray]:
    """``inset`` metres inside each face's centre, plus the top corner furthest from the base
    (the pose closest to full extension with the hand down)."""
    lo, hi = np.array(workspace.min) + inset, np.array(workspace.max) - inset
    centre = (lo + hi) / 2
    targets = {}
    for axis, name in enumerate("xyz"):
        for side, bound in (("min", lo), ("max", hi)):
            point = centre.copy()
            point[axis] = bound[axis]
            targets[f"{name}_{side}"] = point
    targets["far top corner"] = hi.copy()
    return targets
