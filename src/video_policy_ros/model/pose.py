"""Small pose helpers for the model's action encoding (numpy, float64, xyzw quaternions).

Private to ``model/``: rotations are expressed as axis-angle vectors in the base
frame (``fr3_link0``), i.e. ``q = exp(r) * q_ref``.
"""

from __future__ import annotations

import numpy as np


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of ``(..., 4)`` xyzw quaternions."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """``(..., 4)`` unit xyzw → ``(..., 3)`` axis-angle with angle in [0, pi]."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:4] < 0, -q, q)  # the shorter of the two equivalent rotations
    v, w = q[..., :3], q[..., 3:4]
    s = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, w)
    # angle / sin(angle / 2) → 2 as the angle → 0
    scale = np.where(s > 1e-8, angle / np.maximum(s, 1e-12), 2.0 / np.maximum(w, 1e-12))
    return v * scale


def rotvec_to_quat(r: np.ndarray) -> np.ndarray:
    """``(..., 3)`` axis-angle → ``(..., 4)`` unit xyzw."""
    angle = np.linalg.norm(r, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half) / angle → 0.5 as the angle → 0
    scale = np.where(angle > 1e-8, np.sin(half) / np.maximum(angle, 1e-12), 0.5 - angle**2 / 48.0)
    return np.concatenate([r * scale, np.cos(half)], axis=-1)


def mean_quat(q: np.ndarray) -> np.ndarray:
    """Sign-aligned normalised mean of ``(N, 4)`` quaternions (good for clustered orientations)."""
    q = np.where((q @ q[0])[:, None] < 0, -q, q)
    m = q.mean(axis=0)
    return m / np.linalg.norm(m)


def poses_to_actions(poses: np.ndarray, gripper: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> np.ndarray:
    """``(K, 7)`` poses + ``(K,)`` gripper → ``(K, 7)`` [pos - ref_pos, rotvec(q * ref_quat^-1), gripper]."""
    dpos = poses[:, :3] - ref_pos
    drot = quat_to_rotvec(quat_mul(poses[:, 3:], quat_conj(ref_quat)))
    return np.concatenate([dpos, drot, gripper[:, None]], axis=-1)


def actions_to_poses(actions: np.ndarray, ref_pos: np.ndarray, ref_quat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`poses_to_actions`: ``(K, 7)`` → poses ``(K, 7)`` and gripper ``(K,)``."""
    pos = actions[:, :3] + ref_pos
    quat = quat_mul(rotvec_to_quat(actions[:, 3:6]), np.broadcast_to(ref_quat, (len(actions), 4)))
    quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    return np.concatenate([pos, quat], axis=-1), actions[:, 6].copy()
