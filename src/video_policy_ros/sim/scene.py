"""The table-top scene added to franky-sim's FR3: table, coloured cubes, cameras.

The layout is a pure function of the seed, so the sim world and any privileged
consumer (the scripted expert) agree on it without sharing state.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from video_policy_ros.config import SimCameraConfig, TaskConfig
from video_policy_ros.geometry import matrix_to_quat

CUBE_HALF_SIZE = 0.025
TABLE_TOP_Z = 0.0
HAND_BODY = "robot0_hand"
TCP_OFFSET_IN_HAND = 0.1034  # fr3_hand_tcp is this far along the hand's z axis

COLORS_RGBA = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.1, 0.25, 0.85, 1.0),
    "yellow": (0.9, 0.8, 0.1, 1.0),
}

# Cubes are placed where the FR3 reaches them comfortably with the hand pointing down.
_CUBE_X = (0.40, 0.62)
_CUBE_Y = (-0.20, 0.20)
_MIN_CUBE_SPACING = 0.10


@dataclass(frozen=True)
class SceneLayout:
    cube_positions: dict[str, np.ndarray]  # colour -> (3,) centre in fr3_link0
    target: str

    @property
    def instruction(self) -> str:
        return f"touch the {self.target} cube"


def sample_layout(seed: int, task: TaskConfig) -> SceneLayout:
    """Seeded cube positions (non-overlapping) and the target colour."""
    unknown = [c for c in task.colors if c not in COLORS_RGBA]
    if unknown:
        raise ValueError(f"task.colors: unknown colour(s) {unknown}; choose from {sorted(COLORS_RGBA)}")
    rng = np.random.default_rng(seed)
    positions: dict[str, np.ndarray] = {}
    for color in task.colors:
        for _ in range(1000):
            xy = rng.uniform([_CUBE_X[0], _CUBE_Y[0]], [_CUBE_X[1], _CUBE_Y[1]])
            if all(np.linalg.norm(xy - p[:2]) >= _MIN_CUBE_SPACING for p in positions.values()):
                break
        else:
            raise ValueError(f"cannot place {len(task.colors)} cubes {_MIN_CUBE_SPACING} m apart")
        positions[color] = np.array([xy[0], xy[1], TABLE_TOP_Z + CUBE_HALF_SIZE])
    target = task.target or task.colors[int(rng.integers(len(task.colors)))]
    return SceneLayout(positions, target)


def _xyzw_to_mjcf(q: np.ndarray) -> str:
    return f"{q[3]} {q[0]} {q[1]} {q[2]}"


def _look_at_quat(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Orientation (xyzw) of a MuJoCo camera at ``position`` looking at ``target``.

    MuJoCo cameras look along their -z axis with +y up.
    """
    back = position - target
    back /= np.linalg.norm(back)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    return matrix_to_quat(np.stack([right, up, back], axis=1))


def camera_intrinsics(camera: SimCameraConfig) -> np.ndarray:
    """3x3 pinhole matrix of a MuJoCo camera (square pixels, ``fovy`` vertical)."""
    fy = 0.5 * camera.height / math.tan(math.radians(camera.fovy_deg) / 2)
    return np.array([[fy, 0, camera.width / 2], [0, fy, camera.height / 2], [0, 0, 1.0]])


def add_scene(worldbody: ET.Element, layout: SceneLayout, cameras: tuple[SimCameraConfig, ...]) -> None:
    """Append table, cubes and cameras to franky-sim's MJCF tree (before ``sim.start()``)."""
    ET.SubElement(
        worldbody, "geom", name="table", type="box", pos="0.55 0 -0.02", size="0.45 0.6 0.0205",
        rgba="0.55 0.42 0.3 1", contype="1", conaffinity="1",
    )
    for color, pos in layout.cube_positions.items():
        body = ET.SubElement(worldbody, "body", name=f"cube_{color}", pos=" ".join(map(str, pos)))
        ET.SubElement(body, "freejoint", name=f"cube_{color}_joint")
        ET.SubElement(
            body, "geom", type="box", size=f"{CUBE_HALF_SIZE} {CUBE_HALF_SIZE} {CUBE_HALF_SIZE}",
            rgba=" ".join(map(str, COLORS_RGBA[color])), mass="0.1", friction="1 0.01 0.001",
        )
    hand = next((b for b in worldbody.iter("body") if b.get("name") == HAND_BODY), None)
    for cam in cameras:
        if cam.mount == "hand":
            if hand is None:
                raise ValueError(f"camera '{cam.name}' is mounted on the hand but '{HAND_BODY}' is not in the scene")
            # Looks along the hand's +z (towards the fingers), image up = hand +y.
            ET.SubElement(
                hand, "camera", name=cam.name, pos=" ".join(map(str, cam.position)),
                quat="0 0 1 0", fovy=str(cam.fovy_deg),
            )
        else:
            q = _look_at_quat(np.array(cam.position, float), np.array(cam.look_at, float))
            ET.SubElement(
                worldbody, "camera", name=cam.name, pos=" ".join(map(str, cam.position)),
                quat=_xyzw_to_mjcf(q), fovy=str(cam.fovy_deg),
            )
