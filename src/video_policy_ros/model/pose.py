"""The model's action encoding (numpy, float64, xyzw quaternions).

Rotations are axis-angle vectors in the base frame (``fr3_link0``), i.e.
``q = exp(r) * q_ref``, using the stack's shared pose maths in geometry.py.
"""

from __future__ import annotations

import numpy as np

from video_policy_ros.geometry import apply_delta, pose_delta


def mean_quat(q: np.ndarray) -> np.ndarray:
    """Sign-aligned normalised mean of ``(N, 4)`` quaternions (good for clustered orientations)."""
    q = np.where((q @ q[0])[:, None] < 0, -q, q)
    m = q.mean(axis=0)
    return m / np.linalg.norm(m)


def poses_to_actions(poses: np.ndarray, gripper: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> np.ndarray:
    """``(K, 7)`` poses + ``(K,)`` gripper → ``(K, 7)`` [pos - ref_pos, rotvec(q * ref_quat^-1), gripper]."""
    return np.concatenate([pose_delta(np.concatenate([ref_pos, ref_quat]), poses), gripper[:, None]], axis=-1)


def actions_to_poses(actions: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`poses_to_actions`: ``(K, 7)`` → poses ``(K, 7)`` and gripper ``(K,)``."""
    return apply_delta(np.concatenate([ref_pos, ref_quat]), actions[:, :6]), actions[:, 6].copy()
