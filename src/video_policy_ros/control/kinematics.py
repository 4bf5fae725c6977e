"""FR3 kinematics from the maintained MuJoCo model that franky-sim ships (no hand-written DH tables).

The sim world simulates exactly this model, so the controller's idea of the arm and the
simulated arm agree; on a real FR3 it is the manufacturer's geometry. The controller uses it
to turn TCP twists into joint velocities (and back), to find the fingertips for the table
check, and to verify at start-up that every pose of the workspace box is reachable.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from video_policy_ros.geometry import quat_multiply, rotation_error, rotvec_to_quat

TCP_OFFSET_IN_HAND = 0.1034  # fr3_hand_tcp lies this far along the hand's z axis (franky's default EE)
HOME_JOINTS = np.array([0.0, 0.0, 0.0, -1.57, 0.0, 1.57, 0.785])  # franky-sim's start configuration
_BOX = 6  # mjtGeom.mjGEOM_BOX
_COLLISION_GROUP = 3


def _model_path() -> Path:
    import franky_sim

    return Path(franky_sim.__file__).parent / "assets"


def load_fr3_model() -> mujoco.MjModel:
    """franky-sim's FR3 MJCF with its mesh folder resolved (the file names a relative one)."""
    assets = _model_path()
    root = ET.parse(assets / "fr3.xml").getroot()
    root.find("compiler").set("meshdir", str(assets / "meshes"))
    return mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))


@dataclass(frozen=True)
class IkResult:
    joints: np.ndarray
    converged: bool
    min_singular_value: float  # of the position Jacobian: small near full extension


class FR3Kinematics:
    """Forward kinematics and Jacobians of the FR3 + hand; TCP = franky's ``O_T_EE``."""

    def __init__(self, model: mujoco.MjModel | None = None, finger_position: float = 0.04):
        self.model = model or load_fr3_model()
        self._data = mujoco.MjData(self.model)
        m = self.model
        joints = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, f"fr3_joint{i}") for i in range(1, 8)]
        self._qpos = np.array([m.jnt_qposadr[j] for j in joints])
        self._dofs = np.array([m.jnt_dofadr[j] for j in joints])
        self.lower = m.jnt_range[joints, 0].copy()
        self.upper = m.jnt_range[joints, 1].copy()
        for name in ("finger_joint1", "finger_joint2"):
            self._data.qpos[m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)]] = finger_position
        self._hand = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "hand")
        finger_bodies = {mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, b) for b in ("left_finger", "right_finger")}
        self._finger_pads = [
            g for g in range(m.ngeom)
            if m.geom_bodyid[g] in finger_bodies and m.geom_type[g] == _BOX and m.geom_group[g] == _COLLISION_GROUP
        ]
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        self._pad_corners = [corners * m.geom_size[g] for g in self._finger_pads]
        self._jacp = np.zeros((3, m.nv))
        self._jacr = np.zeros((3, m.nv))

    def _update(self, q: np.ndarray) -> None:
        self._data.qpos[self._qpos] = q
        mujoco.mj_kinematics(self.model, self._data)
        mujoco.mj_comPos(self.model, self._data)

    def _tcp_position(self) -> np.ndarray:
        hand_rot = self._data.xmat[self._hand].reshape(3, 3)
        return self._data.xpos[self._hand] + hand_rot[:, 2] * TCP_OFFSET_IN_HAND

    def tcp_pose(self, q: np.ndarray) -> np.ndarray:
        """``[x, y, z, qx, qy, qz, qw]`` of fr3_hand_tcp in fr3_link0 (the model's world frame)."""
        self._update(q)
        w, x, y, z = self._data.xquat[self._hand]
        return np.concatenate([self._tcp_position(), [x, y, z, w]])

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, 7): TCP twist ``[v, omega]`` in fr3_link0 per joint velocity."""
        self._update(q)
        mujoco.mj_jac(self.model, self._data, self._jacp, self._jacr, self._tcp_position(), self._hand)
        return np.vstack([self._jacp[:, self._dofs], self._jacr[:, self._dofs]])

    def lowest_fingertip_z(self, q: np.ndarray) -> float:
        """Height of the lowest corner of the finger pads (what touches the table first)."""
        self._update(q)
        lowest = np.inf
        for geom, corners in zip(self._finger_pads, self._pad_corners):
            points = self._data.geom_xpos[geom] + corners @ self._data.geom_xmat[geom].reshape(3, 3).T
            lowest = min(lowest, float(points[:, 2].min()))
        return lowest

    def solve_ik(self, pose: np.ndarray, start: np.ndarray = HOME_JOINTS, iterations: int = 200,
                 tolerance: float = 1e-4) -> IkResult:
        """Damped least-squares IK for a TCP pose, staying inside the joint limits."""
        q = np.array(start, dtype=float)
        for _ in range(iterations):
            current = self.tcp_pose(q)
            error = np.concatenate([pose[:3] - current[:3], rotation_error(pose[3:], current[3:])])
            if np.linalg.norm(error[:3]) < tolerance and np.linalg.norm(error[3:]) < 10 * tolerance:
                break
            jac = self.jacobian(q)
            q = np.clip(q + damped_pseudo_inverse(jac, 0.05) @ error, self.lower, self.upper)
        current = self.tcp_pose(q)
        converged = bool(
            np.linalg.norm(pose[:3] - current[:3]) < 10 * tolerance
            and np.linalg.norm(rotation_error(pose[3:], current[3:])) < 100 * tolerance
        )
        singular = float(np.linalg.svd(self.jacobian(q)[:3], compute_uv=False).min())
        return IkResult(q, converged, singular)


def damped_pseudo_inverse(jac: np.ndarray, damping: float) -> np.ndarray:
    """``J^T (J J^T + d^2 I)^-1``: the least-squares inverse that stays bounded near singularities."""
    rows = jac.shape[0]
    return jac.T @ np.linalg.solve(jac @ jac.T + damping**2 * np.eye(rows), np.eye(rows))


def adaptive_pseudo_inverse(jac: np.ndarray, threshold: float, max_damping: float) -> np.ndarray:
    """Exact pseudo-inverse away from singularities; damping fades in as the smallest singular
    value drops below ``threshold`` (so tracking is exact in the workspace, bounded at its edge)."""
    u, sigma, vt = np.linalg.svd(jac, full_matrices=False)
    ratio = min(float(sigma[-1]) / threshold, 1.0)
    damping_sq = (1.0 - ratio**2) * max_damping**2
    return vt.T @ np.diag(sigma / (sigma**2 + damping_sq)) @ u.T


def tilted(quat: np.ndarray, axis: np.ndarray, angle: float) -> np.ndarray:
    """``quat`` rotated by ``angle`` about the base-frame ``axis``."""
    return quat_multiply(rotvec_to_quat(np.asarray(axis, float) * angle), quat)


def box_probe_points(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Corners, edge midpoints and face centres of a box (3^3 grid minus the centre)."""
    axes = [np.array([lo[i], (lo[i] + hi[i]) / 2, hi[i]]) for i in range(3)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    centre = (np.asarray(lo) + np.asarray(hi)) / 2
    return grid[np.any(grid != centre, axis=1)]
