"""Chunk → smooth TCP trajectory: the interpolation core (no ROS, no robot).

A trajectory is built by splicing a new chunk onto what the arm is doing now: points
already due (or due too soon to reach smoothly) are dropped, and the trajectory starts
at the set-point commanded at ``now`` *with its velocity and acceleration*, so position,
velocity and acceleration are continuous across the splice.

Between knots each of the six coordinates (position, and orientation as a rotation vector
relative to the splice's start orientation) is a quintic Hermite polynomial: position,
velocity and acceleration are continuous, jerk is bounded. Interior knot velocities are
central differences of the chunk; the last knot is reached at rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.geometry import quat_multiply, rotation_error, rotvec_to_quat
from video_policy_ros.types import ActionChunk

MIN_LEAD_S = 0.02  # a chunk with no point due later than this after the splice is stale
# A point due sooner than this after the splice is skipped when a later one follows: reaching it would take
# more than the acceleration cap from the set-point's velocity. (Chunks arrive up to ~50 ms old on a loaded
# machine; the place demo's set-point then stopped within 48 ms from 0.064 m/s, and the arm ran 6 mm past
# the grasp.)
SMOOTH_LEAD_S = 0.1


@dataclass(frozen=True)
class TrajectorySample:
    pose: np.ndarray  # (7,)
    velocity: np.ndarray  # (6,) [linear m/s, angular rad/s] feed-forward in fr3_link0
    acceleration: np.ndarray  # (6,)
    gripper: float
    finished: bool  # past the last knot: hold

    @classmethod
    def at_rest(cls, pose: np.ndarray, gripper: float) -> "TrajectorySample":
        return cls(np.asarray(pose, float), np.zeros(6), np.zeros(6), gripper, True)


def _quintic(p0, v0, a0, p1, v1, a1, duration: float, s: float):
    """Position, velocity, acceleration at ``s`` in [0, 1] of the quintic Hermite segment."""
    T = duration
    # Coefficients in normalised time (tau = s), with derivatives scaled by T.
    c0, c1, c2 = p0, v0 * T, 0.5 * a0 * T * T
    d = p1 - c0 - c1 - c2
    dv = v1 * T - c1 - 2 * c2
    da = a1 * T * T - 2 * c2
    c3 = 10 * d - 4 * dv + 0.5 * da
    c4 = -15 * d + 7 * dv - da
    c5 = 6 * d - 3 * dv + 0.5 * da
    pos = c0 + s * (c1 + s * (c2 + s * (c3 + s * (c4 + s * c5))))
    vel = (c1 + s * (2 * c2 + s * (3 * c3 + s * (4 * c4 + s * 5 * c5)))) / T
    acc = (2 * c2 + s * (6 * c3 + s * (12 * c4 + s * 20 * c5))) / (T * T)
    return pos, vel, acc


class Trajectory:
    """Knots ``points[i]`` (6-D: position + rotation vector about ``origin``) due at ``times[i]``."""

    def __init__(self, times: np.ndarray, points: np.ndarray, velocities: np.ndarray, start_acceleration: np.ndarray,
                 origin: np.ndarray, gripper: np.ndarray):
        if len(times) < 2 or np.any(np.diff(times) <= 0):
            raise ValueError("trajectory times must have two or more strictly increasing entries")
        self.times = np.asarray(times, float)
        self.points = np.asarray(points, float)
        self.velocities = np.asarray(velocities, float)
        self._start_acceleration = np.asarray(start_acceleration, float)
        self._origin = np.asarray(origin, float)  # orientation that rotation vectors are relative to
        self.gripper = np.asarray(gripper, float)

    @classmethod
    def splice(cls, chunk: ActionChunk, now: float, start: TrajectorySample) -> "Trajectory | None":
        """Trajectory from ``start`` (the set-point at ``now``) through the chunk's future points.

        Returns None when no point of the chunk is far enough in the future (a stale chunk).
        """
        future = chunk.times >= now + MIN_LEAD_S
        if not future.any():
            return None
        later = chunk.times >= now + SMOOTH_LEAD_S
        if later.any():
            future = later
        origin = start.pose[3:]
        poses = chunk.poses[future]
        knots = np.concatenate([
            [np.concatenate([start.pose[:3], np.zeros(3)])],
            np.concatenate([poses[:, :3], rotation_error(poses[:, 3:], origin[None])], axis=1),
        ])
        times = np.concatenate([[now], chunk.times[future]])
        velocities = np.zeros_like(knots)
        velocities[0] = start.velocity
        velocities[1:-1] = (knots[2:] - knots[:-2]) / (times[2:] - times[:-2])[:, None]
        gripper = np.concatenate([[start.gripper], chunk.gripper[future]])
        return cls(times, knots, velocities, start.acceleration, origin, gripper)

    @property
    def end_time(self) -> float:
        return float(self.times[-1])

    def _pose(self, point: np.ndarray) -> np.ndarray:
        return np.concatenate([point[:3], quat_multiply(rotvec_to_quat(point[3:]), self._origin)])

    def sample(self, t: float) -> TrajectorySample:
        if t >= self.times[-1]:
            return TrajectorySample.at_rest(self._pose(self.points[-1]), float(self.gripper[-1]))
        i = max(int(np.searchsorted(self.times, t, side="right")) - 1, 0)
        duration = self.times[i + 1] - self.times[i]
        s = float(np.clip((t - self.times[i]) / duration, 0.0, 1.0))
        a0 = self._start_acceleration if i == 0 else np.zeros(6)
        point, velocity, acceleration = _quintic(
            self.points[i], self.velocities[i], a0, self.points[i + 1], self.velocities[i + 1], np.zeros(6), duration, s
        )
        # The gripper heads for the next knot's opening as soon as its segment starts.
        return TrajectorySample(self._pose(point), velocity, acceleration, float(self.gripper[i + 1]), False)
