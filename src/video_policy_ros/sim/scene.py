"""The table-top scene added to franky-sim's FR3: table, coloured cubes, a bowl, cameras.

The layout (cube and bowl positions, which task, which cube) is a pure function
of the seed, so the sim world and any privileged consumer (the scripted expert)
agree on it without sharing state. Every task uses the same scene, so only the
instruction tells one task from the other.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np

from video_policy_ros.config import SimCameraConfig, TaskConfig
from video_policy_ros.geometry import matrix_to_quat

# 6 cm cubes: big enough to see at a policy's low resolution, small enough for the
# Franka hand (8 cm maximum opening) to grasp with 1 cm to spare on each side.
CUBE_HALF_SIZE = 0.03
# The bowl is a square tray: a floor and four walls, fixed to the table.
BOWL_INNER_HALF_SIZE = 0.07
BOWL_WALL_HEIGHT = 0.04
BOWL_WALL_THICKNESS = 0.01
BOWL_FLOOR_THICKNESS = 0.01
BOWL_RGBA = (0.92, 0.92, 0.88, 1.0)
TABLE_TOP_Z = 0.0
HAND_BODY = "robot0_hand"
FINGER_JOINT = "robot0_finger_joint1"
TCP_OFFSET_IN_HAND = 0.1034  # fr3_hand_tcp is this far along the hand's z axis

COLORS_RGBA = {
    "red": (0.85, 0.1, 0.1, 1.0),
    "green": (0.1, 0.7, 0.2, 1.0),
    "blue": (0.1, 0.25, 0.85, 1.0),
    "yellow": (0.9, 0.8, 0.1, 1.0),
}

# Objects are placed where the FR3 reaches them comfortably with the hand pointing down,
# and where the default front camera frames them.
_PLACEMENT_X = (0.36, 0.56)  # inside the controller's default workspace box (x 0.32-0.58), with margin
_PLACEMENT_Y = (-0.20, 0.20)
_MIN_CUBE_SPACING = 0.10  # centre to centre: room for the open fingers between cubes
_MIN_CUBE_BOWL_SPACING = BOWL_INNER_HALF_SIZE + BOWL_WALL_THICKNESS + CUBE_HALF_SIZE + 0.04
TASK_KINDS = ("touch", "place")


@dataclass(frozen=True)
class SceneLayout:
    cube_positions: dict[str, np.ndarray]  # colour -> (3,) centre in fr3_link0
    target: str
    task: str  # one of TASK_KINDS
    bowl_position: np.ndarray  # (3,) centre of the bowl floor's underside, on the table

    @property
    def instruction(self) -> str:
        return instruction_for(self.task, self.target)


def instruction_for(task: str, target: str) -> str:
    if task == "place":
        return f"put the {target} cube in the bowl"
    return f"touch the {target} cube"


def task_of(instruction: str) -> str:
    """The task kind an :func:`instruction_for` instruction names."""
    return "place" if instruction.startswith("put ") else "touch"


def bowl_floor_top(bowl_position: np.ndarray) -> float:
    return float(bowl_position[2] + BOWL_FLOOR_THICKNESS)


def _sample_xy(rng: np.random.Generator, keep_clear: list[tuple[np.ndarray, float]], what: str) -> np.ndarray:
    """A point in the placement area at least ``distance`` from every ``(point, distance)``."""
    for _ in range(1000):
        xy = rng.uniform([_PLACEMENT_X[0], _PLACEMENT_Y[0]], [_PLACEMENT_X[1], _PLACEMENT_Y[1]])
        if all(np.linalg.norm(xy - p) >= d for p, d in keep_clear):
            return xy
    raise ValueError(f"cannot place the {what} clear of the other objects; use fewer task.colors")


def sample_layout(seed: int, task: TaskConfig) -> SceneLayout:
    """Seeded bowl and cube positions (non-overlapping), the task kind and the target colour."""
    unknown = [c for c in task.colors if c not in COLORS_RGBA]
    if unknown:
        raise ValueError(f"task.colors: unknown colour(s) {unknown}; choose from {sorted(COLORS_RGBA)}")
    rng = np.random.default_rng(seed)
    bowl_xy = _sample_xy(rng, [], "bowl")
    keep_clear = [(bowl_xy, _MIN_CUBE_BOWL_SPACING)]
    positions: dict[str, np.ndarray] = {}
    for color in task.colors:
        xy = _sample_xy(rng, keep_clear, f"{color} cube")
        keep_clear.append((xy, _MIN_CUBE_SPACING))
        positions[color] = np.array([xy[0], xy[1], TABLE_TOP_Z + CUBE_HALF_SIZE])
    target = task.target or task.colors[int(rng.integers(len(task.colors)))]
    kind = TASK_KINDS[int(rng.integers(len(TASK_KINDS)))] if task.kind == "mixed" else task.kind
    return SceneLayout(positions, target, kind, np.array([bowl_xy[0], bowl_xy[1], TABLE_TOP_Z]))


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


def _add_bowl(worldbody: ET.Element, position: np.ndarray) -> None:
    """A static square tray whose floor's underside sits at ``position``."""
    bowl = ET.SubElement(worldbody, "body", name="bowl", pos=" ".join(map(str, position)))
    rgba = " ".join(map(str, BOWL_RGBA))
    outer = BOWL_INNER_HALF_SIZE + BOWL_WALL_THICKNESS
    ET.SubElement(bowl, "geom", name="bowl_floor", type="box", rgba=rgba,
                  pos=f"0 0 {BOWL_FLOOR_THICKNESS / 2}", size=f"{outer} {outer} {BOWL_FLOOR_THICKNESS / 2}")
    wall_z = BOWL_FLOOR_THICKNESS + BOWL_WALL_HEIGHT / 2
    offset = BOWL_INNER_HALF_SIZE + BOWL_WALL_THICKNESS / 2
    long_side, half_t, half_h = outer, BOWL_WALL_THICKNESS / 2, BOWL_WALL_HEIGHT / 2
    for name, (x, y, sx, sy) in {
        "bowl_wall_px": (offset, 0, half_t, long_side), "bowl_wall_nx": (-offset, 0, half_t, long_side),
        "bowl_wall_py": (0, offset, long_side, half_t), "bowl_wall_ny": (0, -offset, long_side, half_t),
    }.items():
        ET.SubElement(bowl, "geom", name=name, type="box", rgba=rgba, pos=f"{x} {y} {wall_z}", size=f"{sx} {sy} {half_h}")


def add_scene(worldbody: ET.Element, layout: SceneLayout, cameras: tuple[SimCameraConfig, ...]) -> None:
    """Append table, cubes and cameras to franky-sim's MJCF tree (before ``sim.start()``)."""
    ET.SubElement(
        worldbody, "geom", name="table", type="box", pos="0.55 0 -0.02", size="0.45 0.6 0.0205",
        rgba="0.55 0.42 0.3 1", contype="1", conaffinity="1",
    )
    _add_bowl(worldbody, layout.bowl_position)
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
