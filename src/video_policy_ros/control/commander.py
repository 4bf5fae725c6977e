"""Where a chunk becomes an arm command.

``ArmCommander`` is a pure core: chunks pass the watchdog and are spliced into a smooth
trajectory; each control cycle it turns the trajectory's set-point into a TCP twist
(feed-forward velocity + feedback on the pose error) and lets the watchdog limit it into
the joint velocities that are sent. Stops, silence and limits are the watchdog's decisions.
"""

from __future__ import annotations

import numpy as np

from video_policy_ros.control.trajectory import Trajectory, TrajectorySample
from video_policy_ros.control.watchdog import JointCommand, Watchdog
from video_policy_ros.geometry import rotation_error
from video_policy_ros.types import ActionChunk, ArmState


class ArmCommander:
    def __init__(self, watchdog: Watchdog, position_gain: float):
        self.watchdog = watchdog
        self.position_gain = position_gain
        self._trajectory: Trajectory | None = None
        self._sent = JointCommand(np.zeros(7), np.zeros(6), None)
        self._joint_acceleration = np.zeros(7)

    @property
    def active(self) -> bool:
        return self._trajectory is not None and self.watchdog.stop_message is None

    @property
    def last_sent(self) -> JointCommand:
        return self._sent

    def setpoint(self, now: float, state: ArmState) -> TrajectorySample:
        """What is commanded at ``now``: the trajectory's sample, or the measured pose moving at the sent twist."""
        if self._trajectory is None:
            return TrajectorySample(state.tcp_pose, self._sent.twist.copy(), np.zeros(6), state.gripper, True)
        return self._trajectory.sample(now)

    def accept_chunk(self, chunk: ActionChunk, now: float, state: ArmState) -> None:
        """Splice ``chunk`` in at ``now``; raises ChunkRejected (and keeps the old plan)."""
        start = self.setpoint(now, state)
        admitted = self.watchdog.admit_chunk(chunk, now, start)
        self._trajectory = Trajectory.splice(admitted, now, start)

    def stopped(self) -> None:
        """The arm was halted outside this core (a stop motion, a robot error): forget plan and motion."""
        self._trajectory = None
        self._sent = JointCommand(np.zeros(7), np.zeros(6), None)
        self._joint_acceleration = np.zeros(7)

    def command(self, now: float, state: ArmState, dt: float) -> JointCommand:
        """The command for this cycle, already limited; ``dt`` is the time since the previous one."""
        if self.watchdog.stop_message is not None:
            self.stopped()
            return JointCommand.stop(now)
        trajectory = self._trajectory
        if trajectory is not None and now < trajectory.end_time and self.watchdog.silent(now):
            self._trajectory = trajectory = None  # halt smoothly through the limits below, then hold
        if trajectory is None:
            desired, gripper = np.zeros(6), None
        else:
            target = trajectory.sample(now)
            error = np.concatenate([target.pose[:3] - state.tcp_pose[:3], rotation_error(target.pose[3:], state.tcp_pose[3:])])
            desired, gripper = target.velocity + self.position_gain * error, target.gripper
        command, self._joint_acceleration = self.watchdog.limit(desired, state, self._sent, self._joint_acceleration, dt)
        self._sent = command
        return JointCommand(command.joint_velocities, command.twist, gripper, stamp=now)
