"""Scripted expert for the touch task: solves it from privileged state (the scene layout).

It is a planner, not a controller: given the current TCP pose it returns the next
chunk of timed absolute targets — above the target cube, then straight down to
its top face with the gripper closed. Used for demonstrations and as the sim-only
policy in the inference node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.geometry import interpolate_pose, quat_to_rotvec, quat_multiply, quat_conjugate
from video_policy_ros.sim.scene import SceneLayout
from video_policy_ros.sim.task import target_top
from video_policy_ros.types import ActionChunk

# Hand pointing straight down (fr3_hand_tcp z axis along -z of fr3_link0), fingers along y.
TOP_DOWN = np.array([1.0, 0.0, 0.0, 0.0])


@dataclass(frozen=True)
class ExpertParams:
    speed: float = 0.15  # m/s along the path (below the controller's limit)
    angular_speed: float = 0.5  # rad/s
    hover_height: float = 0.10  # m above the cube's top face before descending
    touch_depth: float = 0.005  # m the TCP aims below the top face, so contact is certain
    chunk_steps: int = 32
    dt: float = 0.1


class ScriptedExpert:
    def __init__(self, layout: SceneLayout, params: ExpertParams = ExpertParams()):
        self.layout = layout
        self.params = params

    def waypoints(self, tcp_pose: np.ndarray) -> list[np.ndarray]:
        """Remaining poses to visit from ``tcp_pose``: hover point, then the touch point."""
        p = self.params
        top = target_top(self.layout.cube_positions[self.layout.target])
        hover = np.concatenate([top + [0, 0, p.hover_height], TOP_DOWN])
        touch = np.concatenate([top - [0, 0, p.touch_depth], TOP_DOWN])
        horizontal_error = np.linalg.norm(tcp_pose[:2] - top[:2])
        # Once above the cube, descend; otherwise go to the hover point first.
        return [touch] if horizontal_error < 0.01 and tcp_pose[2] <= hover[2] + 0.01 else [hover, touch]

    def plan(self, tcp_pose: np.ndarray, stamp: float) -> ActionChunk:
        """Constant-speed path through the waypoints, sampled every ``dt``."""
        p = self.params
        segments = [tcp_pose] + self.waypoints(tcp_pose)
        durations = []
        for a, b in zip(segments[:-1], segments[1:]):
            angle = np.linalg.norm(quat_to_rotvec(quat_multiply(b[3:], quat_conjugate(a[3:]))))
            durations.append(max(np.linalg.norm(b[:3] - a[:3]) / p.speed, angle / p.angular_speed, 1e-6))
        ends = np.cumsum(durations)
        poses = []
        for k in range(1, p.chunk_steps + 1):
            t = k * p.dt
            i = int(np.searchsorted(ends, t))
            if i >= len(durations):
                poses.append(segments[-1])
                continue
            start = ends[i] - durations[i]
            poses.append(interpolate_pose(segments[i], segments[i + 1], (t - start) / durations[i]))
        gripper = np.zeros(p.chunk_steps)  # closed: the fingertips touch the cube
        return ActionChunk(stamp=stamp, dt=p.dt, poses=np.array(poses), gripper=gripper)
