"""Arm backends: the port the controller drives, and its franky implementation.

franky runs the 1 kHz loop in C++. We stream short Cartesian velocity motions:
each holds its twist for ``command_timeout`` and then franky's own trajectory
generator brings the arm smoothly to rest, so a controller that stops sending
(a crash, a stalled Python thread) halts the arm without any help from Python.
"""

from __future__ import annotations

import os
import socket
import time
from abc import ABC, abstractmethod

import numpy as np

from video_policy_ros.errors import StackError
from video_policy_ros.types import ArmState


class ArmError(StackError):
    """The arm cannot be reached or reported an error."""


class ArmBackend(ABC):
    @abstractmethod
    def read_state(self) -> ArmState: ...

    @abstractmethod
    def send_velocity(self, linear: np.ndarray, angular: np.ndarray) -> None:
        """Track this TCP twist until the next call or the command timeout, whichever comes first."""

    @abstractmethod
    def halt(self) -> None:
        """Decelerate to rest as fast as the robot's limits allow."""

    @abstractmethod
    def move_gripper(self, finger_position: float) -> None:
        """Start moving the fingers to ``finger_position`` (metres per finger); returns at once."""

    @abstractmethod
    def recover(self) -> None:
        """Clear robot errors after a fault (only called when at rest)."""

    def close(self) -> None:
        """Release the connection (stops any motion)."""


def _check_reachable(ip: str, timeout_s: float) -> None:
    """libfranka would block for a long time on a wrong IP: fail fast with a clear message."""
    try:
        with socket.create_connection((ip, 1337), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ArmError(
            f"robot_ip {ip}: no Franka controller answers on TCP port 1337 ({exc.strerror or exc}); "
            "check the IP, the cable and that FCI is enabled (in sim: is the sim world running?)"
        ) from None


class FrankyArm(ArmBackend):
    """A Franka FR3 (real, or franky-sim speaking the same protocol) through ``franky``."""

    GRIPPER_READ_EVERY = 10  # gripper state costs a network round trip; it changes slowly

    def __init__(
        self,
        robot_ip: str,
        *,
        command_timeout_s: float,
        relative_dynamics_factor: float,
        gripper_speed: float,
        connect_timeout_s: float = 5.0,
        realtime: bool = False,
    ):
        import franky

        self._franky = franky
        _check_reachable(robot_ip, connect_timeout_s)
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        try:
            realtime_config = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
            self._robot = franky.Robot(robot_ip, realtime_config=realtime_config)
            self._robot.relative_dynamics_factor = relative_dynamics_factor
            self._gripper = franky.Gripper(robot_ip)
        except Exception as exc:  # franky raises several unrelated types on connect
            raise ArmError(f"robot_ip {robot_ip}: connection failed: {exc}") from None
        finally:
            if not realtime:
                # libfranka raises the *calling* thread to real-time priority; every Python thread
                # started from it would inherit that and, without an RT kernel set up for it,
                # could starve the machine (the sim world shares it).
                os.sched_setscheduler(0, policy, param)
        self._duration = franky.Duration(max(1, int(round(command_timeout_s * 1000))))
        self._gripper_speed = gripper_speed
        self._gripper_target: float | None = None
        self._gripper_position = self._gripper.width / 2
        self._reads = 0

    def read_state(self) -> ArmState:
        try:
            state = self._robot.state
            stamp = time.time()
            if self._reads % self.GRIPPER_READ_EVERY == 0:
                self._gripper_position = self._gripper.width / 2
        except self._franky.Exception as exc:
            raise ArmError(f"lost the robot's state stream: {exc}") from None
        self._reads += 1
        ee = state.O_T_EE
        return ArmState(
            stamp=stamp,
            joint_positions=np.asarray(state.q, dtype=np.float64),
            joint_velocities=np.asarray(state.dq, dtype=np.float64),
            tcp_pose=np.concatenate([ee.translation, ee.quaternion]),
            gripper=self._gripper_position,
        )

    def _move(self, motion) -> None:
        try:
            self._robot.move(motion, asynchronous=True)
        except self._franky.Exception as exc:
            raise ArmError(f"robot rejected the motion: {exc}") from None

    def send_velocity(self, linear: np.ndarray, angular: np.ndarray) -> None:
        f = self._franky
        twist = f.Twist(np.asarray(linear, dtype=float), np.asarray(angular, dtype=float))
        self._move(f.CartesianVelocityMotion(f.RobotVelocity(twist), duration=self._duration))

    def halt(self) -> None:
        self._move(self._franky.CartesianVelocityStopMotion(relative_dynamics_factor=1.0))

    def move_gripper(self, finger_position: float) -> None:
        if self._gripper_target is not None and abs(finger_position - self._gripper_target) < 1e-3:
            return
        self._gripper_target = finger_position
        self._gripper.move_async(2 * finger_position, self._gripper_speed)

    def recover(self) -> None:
        self._robot.recover_from_errors()

    def close(self) -> None:
        try:
            self.halt()
            self._robot.join_motion(timeout=2.0)
        except Exception:  # closing must not hide the error that made us close
            pass
