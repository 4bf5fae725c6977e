"""The "touch the <colour> cube" task: instruction and success check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.sim.scene import CUBE_HALF_SIZE, SceneLayout


@dataclass(frozen=True)
class TaskResult:
    success: bool
    duration_s: float
    target: str
    distance_m: float  # final TCP distance to the target cube's top face centre

    def summary(self) -> str:
        verdict = "SUCCESS" if self.success else "FAILURE"
        return (
            f"{verdict}: touch the {self.target} cube, "
            f"{self.duration_s:.1f} s, final TCP distance {self.distance_m * 100:.1f} cm"
        )


def target_top(cube_center: np.ndarray) -> np.ndarray:
    return cube_center + np.array([0.0, 0.0, CUBE_HALF_SIZE])


def touch_distance(layout: SceneLayout, cube_positions: dict[str, np.ndarray], tcp_position: np.ndarray) -> float:
    """TCP distance to the top-face centre of the target cube, where the cube is now."""
    return float(np.linalg.norm(tcp_position - target_top(cube_positions[layout.target])))


def is_success(distance_m: float, success_distance: float) -> bool:
    return distance_m <= success_distance
