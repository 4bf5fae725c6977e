"""Chunk → continuous TCP trajectory: the interpolation core (no ROS, no robot).

A trajectory is a list of timed poses. It is built by splicing a new chunk onto
what the arm is doing now: points already due (older than ``now``) are dropped,
and the trajectory starts at the pose commanded at ``now`` so the target never
jumps. Between points, position is linear and orientation is slerped; the
feed-forward velocity is the segment's constant velocity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.geometry import interpolate_pose, rotation_error
from video_policy_ros.types import ActionChunk


@dataclass(frozen=True)
class TrajectorySample:
    pose: np.ndarray  # (7,)
    linear_velocity: np.ndarray  # (3,) m/s feed-forward
    angular_velocity: np.ndarray  # (3,) rad/s feed-forward
    gripper: float
    finished: bool  # past the last point: hold


class Trajectory:
    """Timed poses ``poses[i]`` due at ``times[i]`` (strictly increasing)."""

    def __init__(self, times: np.ndarray, poses: np.ndarray, gripper: np.ndarray):
        if len(times) < 1 or np.any(np.diff(times) <= 0):
            raise ValueError("trajectory times must be non-empty and strictly increasing")
        self.times = np.asarray(times, dtype=np.float64)
        self.poses = np.asarray(poses, dtype=np.float64)
        self.gripper = np.asarray(gripper, dtype=np.float64)

    @classmethod
    def splice(cls, chunk: ActionChunk, now: float, start: TrajectorySample) -> "Trajectory | None":
        """Trajectory from ``start`` (what is commanded at ``now``) through the chunk's future points.

        Returns None when every point of the chunk is already due (a stale chunk).
        """
        future = chunk.times > now
        if not future.any():
            return None
        times = np.concatenate([[now], chunk.times[future]])
        poses = np.concatenate([start.pose[None], chunk.poses[future]])
        gripper = np.concatenate([[start.gripper], chunk.gripper[future]])
        return cls(times, poses, gripper)

    def sample(self, t: float) -> TrajectorySample:
        if t >= self.times[-1]:
            zero = np.zeros(3)
            return TrajectorySample(self.poses[-1], zero, zero, float(self.gripper[-1]), True)
        i = max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)
        t0, t1 = self.times[i], self.times[i + 1]
        p0, p1 = self.poses[i], self.poses[i + 1]
        s = float(np.clip((t - t0) / (t1 - t0), 0.0, 1.0))
        duration = t1 - t0
        return TrajectorySample(
            pose=interpolate_pose(p0, p1, s),
            linear_velocity=(p1[:3] - p0[:3]) / duration,
            angular_velocity=rotation_error(p1[3:], p0[3:]) / duration,
            gripper=float(self.gripper[i + 1]),  # the gripper moves to the next setpoint as soon as it is active
            finished=False,
        )
