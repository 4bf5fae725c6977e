"""Where a chunk becomes an arm command.

``ArmCommander`` is a pure core: it receives chunks and measured states and,
each control cycle, returns the TCP velocity to send — the trajectory's
feed-forward velocity plus feedback on the pose error, with the target clamped
into the workspace and speeds scaled down (never up) to the limits. Every way
of stopping (e-stop, robot fault) goes through one latch, cleared only by
``reset`` when the arm is at rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video_policy_ros.control.trajectory import Trajectory, TrajectorySample
from video_policy_ros.geometry import rotation_error
from video_policy_ros.types import ActionChunk, ArmState


@dataclass(frozen=True)
class CommandLimits:
    max_linear_speed: float  # m/s
    max_angular_speed: float  # rad/s
    position_gain: float  # 1/s
    workspace_min: np.ndarray  # (3,)
    workspace_max: np.ndarray  # (3,)
    rest_joint_speed: float = 0.01  # rad/s: below this on every joint the arm counts as halted


@dataclass(frozen=True)
class ArmCommand:
    """What the controller sends this cycle. ``halt`` means: stop, ignore the twist."""

    linear: np.ndarray  # (3,) m/s in fr3_link0
    angular: np.ndarray  # (3,) rad/s in fr3_link0
    gripper: float | None  # finger joint target, None = leave the gripper alone
    halt: bool = False

    @classmethod
    def stop(cls) -> "ArmCommand":
        return cls(np.zeros(3), np.zeros(3), None, halt=True)


class ChunkRejected(ValueError):
    """A chunk that must not be executed; the message says why."""


def _scale_to(vector: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


class ArmCommander:
    def __init__(self, limits: CommandLimits):
        self.limits = limits
        self._trajectory: Trajectory | None = None
        self._latched: str | None = None  # reason of the active stop, None when running

    # ------------------------------------------------------------------ inputs

    @property
    def stopped_reason(self) -> str | None:
        return self._latched

    @property
    def active(self) -> bool:
        return self._trajectory is not None and self._latched is None

    def accept_chunk(self, chunk: ActionChunk, now: float, state: ArmState) -> None:
        """Splice ``chunk`` in at ``now``; raises :class:`ChunkRejected` (and keeps the old plan)."""
        if self._latched is not None:
            raise ChunkRejected(f"controller is stopped ({self._latched}); call /controller/reset first")
        if not (np.all(np.isfinite(chunk.poses)) and np.all(np.isfinite(chunk.gripper))):
            raise ChunkRejected("chunk contains NaN or infinite values")
        norms = np.linalg.norm(chunk.poses[:, 3:], axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-3):
            raise ChunkRejected(f"chunk orientations are not unit quaternions (norms {norms.min():.3f}..{norms.max():.3f})")
        start = self._current_setpoint(now, state)
        trajectory = Trajectory.splice(chunk, now, start)
        if trajectory is None:
            raise ChunkRejected(f"chunk is stale: its last point was due {now - chunk.times[-1]:.3f} s ago")
        self._trajectory = trajectory

    def latch_stop(self, reason: str) -> bool:
        """E-stop or fault: halt now and ignore chunks until :meth:`reset`. True if newly latched."""
        self._trajectory = None
        if self._latched is not None:
            return False
        self._latched = reason
        return True

    def reset(self, state: ArmState) -> tuple[bool, str]:
        """Clear a latched stop, only when the arm is at rest. Returns (ok, message)."""
        if self._latched is None:
            return True, "controller was not stopped"
        speed = float(np.max(np.abs(state.joint_velocities)))
        if speed >= self.limits.rest_joint_speed:
            return False, f"arm still moving ({speed:.3f} rad/s); wait until it is at rest"
        reason, self._latched = self._latched, None
        return True, f"cleared stop ({reason}); holding position until the next chunk"

    # ------------------------------------------------------------------ output

    def _current_setpoint(self, now: float, state: ArmState) -> TrajectorySample:
        if self._trajectory is None:
            zero = np.zeros(3)
            return TrajectorySample(state.tcp_pose, zero, zero, state.gripper, True)
        return self._trajectory.sample(now)

    def command(self, now: float, state: ArmState) -> ArmCommand:
        """The command for this cycle, already limited."""
        if self._latched is not None:
            return ArmCommand.stop()
        if self._trajectory is None:
            return ArmCommand(np.zeros(3), np.zeros(3), None)
        setpoint = self._trajectory.sample(now)
        lim = self.limits
        target = np.clip(setpoint.pose[:3], lim.workspace_min, lim.workspace_max)
        feed_forward = np.where(target == setpoint.pose[:3], setpoint.linear_velocity, 0.0)
        linear = feed_forward + lim.position_gain * (target - state.tcp_pose[:3])
        angular = setpoint.angular_velocity + lim.position_gain * rotation_error(setpoint.pose[3:], state.tcp_pose[3:])
        return ArmCommand(
            _scale_to(linear, lim.max_linear_speed),
            _scale_to(angular, lim.max_angular_speed),
            setpoint.gripper,
        )
