"""Pose maths on ``[x, y, z, qx, qy, qz, qw]`` arrays (scalar-last quaternions).

Small and dependency-free so that control, sim and nodes share one convention.
"""

from __future__ import annotations

import numpy as np


def quat_normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ax, ay, az, aw = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bx, by, bz, bw = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    q = np.array(q, dtype=np.float64)
    q[..., :3] *= -1.0
    return q


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Axis-angle vector (angle in [0, pi]) of a unit quaternion."""
    q = quat_normalize(q)
    q = np.where(q[..., 3:4] < 0, -q, q)  # shortest rotation
    s = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., 3:4])
    scale = np.where(s > 1e-12, angle / np.maximum(s, 1e-12), 2.0)
    return q[..., :3] * scale


def rotvec_to_quat(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > 1e-12, np.sin(half) / np.maximum(angle, 1e-12), 0.5)
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = quat_normalize(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    else:
        i = int(np.argmax(np.diag(m)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * np.sqrt(1.0 + m[i, i] - m[j, j] - m[k, k])
        q = [0.0, 0.0, 0.0, (m[k, j] - m[j, k]) / s]
        q[i] = 0.25 * s
        q[j] = (m[j, i] + m[i, j]) / s
        q[k] = (m[k, i] + m[i, k]) / s
    return quat_normalize(np.array(q))


def rotation_error(target_q: np.ndarray, current_q: np.ndarray) -> np.ndarray:
    """Rotation vector (in the base frame) that turns ``current_q`` into ``target_q``."""
    return quat_to_rotvec(quat_multiply(target_q, quat_conjugate(current_q)))


def slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    if np.dot(q0, q1) < 0:
        q1 = -q1
    delta = quat_multiply(q1, quat_conjugate(q0))
    return quat_normalize(quat_multiply(rotvec_to_quat(s * quat_to_rotvec(delta)), q0))


def interpolate_pose(p0: np.ndarray, p1: np.ndarray, s: float) -> np.ndarray:
    """Linear in position, slerp in orientation; ``s`` in [0, 1]."""
    return np.concatenate([(1 - s) * p0[:3] + s * p1[:3], slerp(p0[3:], p1[3:], s)])


def pose_delta(reference: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """``(..., 6)`` ``(dx, dy, dz, rx, ry, rz)`` taking ``reference`` ``(7,)`` to ``pose`` ``(..., 7)``.

    Both in the base frame: ``pose.q = exp(r) * reference.q``.
    """
    return np.concatenate([pose[..., :3] - reference[:3], rotation_error(pose[..., 3:], reference[3:])], axis=-1)


def apply_delta(reference: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pose_delta`: ``(..., 6)`` deltas → ``(..., 7)`` poses."""
    q = quat_multiply(rotvec_to_quat(delta[..., 3:]), reference[3:])
    return np.concatenate([reference[:3] + delta[..., :3], quat_normalize(q)], axis=-1)
