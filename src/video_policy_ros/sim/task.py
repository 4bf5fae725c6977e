"""The tasks' success checks: "touch the <colour> cube" and "put the <colour> cube in the bowl".

Both read the same :class:`SceneState` (where things are now), so the sim world
evaluates either task from one snapshot of the physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.sim.scene import BOWL_INNER_HALF_SIZE, CUBE_HALF_SIZE, SceneLayout, bowl_floor_top

RESTING_TOLERANCE = 0.01  # m above the bowl floor that still counts as resting on it
RELEASE_MARGIN = 0.004  # m per finger beyond the cube's half width: the fingers have let go


@dataclass(frozen=True)
class SceneState:
    tcp_position: np.ndarray  # (3,) fr3_hand_tcp in fr3_link0
    cube_positions: dict[str, np.ndarray]  # colour -> (3,) centre now
    finger_position: float  # fr3_finger_joint1, metres (half the opening)


@dataclass(frozen=True)
class TaskCheck:
    success: bool
    distance_m: float  # touch: TCP to the target's top face; place: target cube centre to the bowl centre (xy)


@dataclass(frozen=True)
class TaskResult:
    success: bool
    duration_s: float
    instruction: str
    distance_m: float

    def summary(self) -> str:
        verdict = "SUCCESS" if self.success else "FAILURE"
        return f"{verdict}: {self.instruction}, {self.duration_s:.1f} s, final distance {self.distance_m * 100:.1f} cm"


def target_top(cube_center: np.ndarray) -> np.ndarray:
    return cube_center + np.array([0.0, 0.0, CUBE_HALF_SIZE])


def touch_distance(layout: SceneLayout, cube_positions: dict[str, np.ndarray], tcp_position: np.ndarray) -> float:
    """TCP distance to the top-face centre of the target cube, where the cube is now."""
    return float(np.linalg.norm(tcp_position - target_top(cube_positions[layout.target])))


def is_success(distance_m: float, success_distance: float) -> bool:
    return distance_m <= success_distance


def in_bowl(layout: SceneLayout, cube_position: np.ndarray) -> bool:
    """The cube's centre is over the bowl's floor and the cube rests on it."""
    inside = np.all(np.abs(cube_position[:2] - layout.bowl_position[:2]) <= BOWL_INNER_HALF_SIZE)
    resting = cube_position[2] <= bowl_floor_top(layout.bowl_position) + CUBE_HALF_SIZE + RESTING_TOLERANCE
    return bool(inside and resting)


def check(layout: SceneLayout, state: SceneState, success_distance: float) -> TaskCheck:
    """Success of the layout's task in ``state``."""
    if layout.task == "place":
        cube = state.cube_positions[layout.target]
        released = state.finger_position >= CUBE_HALF_SIZE + RELEASE_MARGIN
        distance = float(np.linalg.norm(cube[:2] - layout.bowl_position[:2]))
        return TaskCheck(in_bowl(layout, cube) and released, distance)
    distance = touch_distance(layout, state.cube_positions, state.tcp_position)
    return TaskCheck(is_success(distance, success_distance), distance)
