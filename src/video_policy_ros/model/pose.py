"""The model's action encoding (numpy, float64, xyzw quaternions).

Rotations are axis-angle vectors in the base frame (``fr3_link0``), i.e.
``q = exp(r) * q_ref``, using the stack's shared pose maths in geometry.py.
"""

from __future__ import annotations

import numpy as np

from video_policy_ros.geometry import quat_conjugate, quat_multiply, quat_to_rotvec, rotvec_to_quat


def mean_quat(q: np.ndarray) -> np.ndarray:
    """Sign-aligned normalised mean of ``(N, 4)`` quaternions (good for clustered orientations)."""
    q = np.where((q @ q[0])[:, None] < 0, -q, q)
    m = q.mean(axis=0)
    return m / np.linalg.norm(m)


def poses_to_actions(poses: np.ndarray, gripper: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> np.ndarray:
    """``(K, 7)`` poses + ``(K,)`` gripper → ``(K, 7)`` [pos - ref_pos, rotvec(q * ref_quat^-1), gripper]."""
    dpos = poses[:, :3] - ref_pos
    drot = quat_to_rotvec(quat_multiply(poses[:, 3:], quat_conjugate(ref_quat)))
    return np.concatenate([dpos, drot, gripper[:, None]], axis=-1)


def actions_to_poses(actions: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`poses_to_actions`: ``(K, 7)`` → poses ``(K, 7)`` and gripper ``(K,)``."""
    pos = actions[:, :3] + ref_pos
    quat = quat_multiply(rotvec_to_quat(actions[:, 3:6]), np.broadcast_to(ref_quat, (len(actions), 4)))
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    return np.concatenate([pos, quat], axis=-1), actions[:, 6].copy()
