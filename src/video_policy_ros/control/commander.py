"""Where a chunk becomes an arm command.

``ArmCommander`` is a pure core: chunks pass the watchdog and are spliced into a smooth
trajectory; each control cycle it turns the trajectory's set-point into a TCP twist
(feed-forward velocity + feedback on the pose error) and lets the watchdog limit it into
the joint velocities that are sent. Stops, silence and limits are the watchdog's decisions.

Where a chunk asks for more than the TCP speed caps, the trajectory's own clock runs
slower than the wall clock (time scaling), so the set-point moves along the chunk's path
no faster than the arm may: the arm stays on the path and the set-point never runs away
from it. Each new chunk re-anchors the trajectory to the wall clock.
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
        self._progress = 0.0  # the trajectory's clock: behind the wall clock where it was slowed to the caps
        self._sent = JointCommand(np.zeros(7), np.zeros(6), None)
        self._joint_acceleration = np.zeros(7)

    @property
    def active(self) -> bool:
        return self._trajectory is not None and self.watchdog.stop_message is None

    @property
    def last_sent(self) -> JointCommand:
        return self._sent

    def _time_scale(self, sample: TrajectorySample) -> float:
        """How fast the trajectory's clock may run so that its velocity stays within the TCP caps."""
        watchdog = self.watchdog
        linear, angular = np.linalg.norm(sample.velocity[:3]), np.linalg.norm(sample.velocity[3:])
        return min(1.0, watchdog.linear_cap / max(linear, 1e-9), watchdog.angular_cap / max(angular, 1e-9))

    def _scaled_sample(self) -> TrajectorySample:
        sample = self._trajectory.sample(self._progress)
        rate = self._time_scale(sample)
        return TrajectorySample(sample.pose, sample.velocity * rate, sample.acceleration * rate**2, sample.gripper,
                                sample.finished)

    def setpoint(self, now: float, state: ArmState) -> TrajectorySample:
        """What is commanded now: the trajectory's (time-scaled) sample, or the measured pose moving at the sent twist."""
        if self._trajectory is None:
            return TrajectorySample(state.tcp_pose, self._sent.twist.copy(), np.zeros(6), state.gripper, True)
        return self._scaled_sample()

    def accept_chunk(self, chunk: ActionChunk, now: float, state: ArmState) -> None:
        """Splice ``chunk`` in at ``now``; raises ChunkRejected (and keeps the old plan)."""
        start = self.setpoint(now, state)
        admitted = self.watchdog.admit_chunk(chunk, now, start)
        self._trajectory, self._progress = Trajectory.splice(admitted, now, start), now

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
        if trajectory is not None and self._progress < trajectory.end_time and self.watchdog.silent(now):
            self._trajectory = trajectory = None  # halt smoothly through the limits below, then hold
        if trajectory is None:
            desired, gripper = np.zeros(6), None
        else:
            rate = self._time_scale(trajectory.sample(self._progress))
            # Predictor step: the velocity may grow within the step, so the rate at its end counts too.
            rate = min(rate, self._time_scale(trajectory.sample(self._progress + dt * rate)))
            self._progress += dt * rate
            target = self._scaled_sample()
            error = np.concatenate([target.pose[:3] - state.tcp_pose[:3], rotation_error(target.pose[3:], state.tcp_pose[3:])])
            desired, gripper = target.velocity + self.position_gain * error, target.gripper
        command, self._joint_acceleration = self.watchdog.limit(desired, state, self._sent, self._joint_acceleration, dt)
        self._sent = command
        return JointCommand(command.joint_velocities, command.twist, gripper, stamp=now)
