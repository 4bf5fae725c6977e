"""Arm backends: the port the controller drives, and its franky implementation.

franky runs the 1 kHz loop in C++. We stream short joint velocity motions: each holds its
velocities for ``command_timeout`` and then franky's own trajectory generator brings the
arm smoothly to rest, so a controller that stops sending (a crash, a stalled Python
thread) halts the arm without any help from Python.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from abc import ABC, abstractmethod

import numpy as np

from video_policy_ros.errors import StackError
from video_policy_ros.types import ArmState

FCI_PORT = 1337


class ArmError(StackError):
    """The arm reported an error. ``kind`` names it for the recovery allow-list."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class RobotUnreachable(StackError):
    """No robot answered at the configured address (yet)."""


class ArmBackend(ABC):
    @abstractmethod
    def read_state(self) -> ArmState: ...

    @abstractmethod
    def send_joint_velocity(self, joint_velocities: np.ndarray) -> None:
        """Track these joint velocities until the next call or the command timeout, whichever comes first."""

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


def probe_fci(ip: str, timeout_s: float) -> None:
    """libfranka spins for a minute on an address nobody answers: check the TCP port first."""
    try:
        with socket.create_connection((ip, FCI_PORT), timeout=timeout_s):
            pass
    except OSError as exc:
        raise RobotUnreachable(
            f"robot_ip {ip}: no Franka controller answers on TCP port {FCI_PORT} ({exc.strerror or exc}); "
            "check the IP, the cable and that FCI is enabled (in sim: is the sim world running?)"
        ) from None


def classify_franky_error(franky, exc: BaseException) -> ArmError:
    """franky's exception types (and the planner's RuntimeError) → an ArmError kind."""
    kinds = [
        (franky.ControlException, "reflex"),  # "Motion aborted by reflex", motion-generator violations
        (franky.CommandException, "command"),
        (franky.NetworkException, "network"),
        (franky.InvalidOperationException, "invalid_operation"),
    ]
    kind = next((name for cls, name in kinds if isinstance(exc, cls)), None)
    if kind is None and isinstance(exc, RuntimeError):
        text = str(exc).lower()
        kind = "motion_planner" if "planner" in text else "network" if "net exception" in text else "motion_generator"
    return ArmError(kind or "robot", f"{type(exc).__name__}: {exc}")


class MeasurementClock:
    """Wall-clock stamps for states measured on the robot's own clock.

    ``time.time()`` taken after reading a state is late by however long this thread was
    held up (tens of ms on a loaded machine), which shows up as speed spikes in /ee_pose.
    The robot's clock (libfranka's state time) is exact, so the stamp is robot time plus an
    offset: the smallest ``read time - robot time`` seen, allowed to creep up by ``slack``
    per robot second (clock drift) and never more than ``max_lag`` behind the read time
    (a simulated FR3 on a loaded machine runs slower than real time, or stalls).
    """

    def __init__(self, slack: float = 0.01, max_lag: float = 0.05):
        self._slack = slack
        self._max_lag = max_lag
        self._offset: float | None = None
        self._last_robot_time = 0.0

    def stamp(self, robot_time: float, read_time: float) -> float:
        measured = read_time - robot_time
        if self._offset is None:
            self._offset = measured
        creep = self._slack * max(robot_time - self._last_robot_time, 0.0)
        self._offset = max(min(self._offset + creep, measured), measured - self._max_lag)
        self._last_robot_time = robot_time
        return robot_time + self._offset


class FrankyArm(ArmBackend):
    """A Franka FR3 (real, or franky-sim speaking the same protocol) through ``franky``."""

    def __init__(self, robot_ip: str, *, command_timeout_s: float, relative_dynamics_factor: float,
                 gripper_speed: float, realtime: bool = False, probe_timeout_s: float = 1.0):
        import franky

        self._franky = franky
        probe_fci(robot_ip, probe_timeout_s)
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        try:
            realtime_config = franky.RealtimeConfig.Enforce if realtime else franky.RealtimeConfig.Ignore
            self._robot = franky.Robot(robot_ip, realtime_config=realtime_config)
            self._robot.relative_dynamics_factor = 1.0
            self._gripper = franky.Gripper(robot_ip)
        except Exception as exc:  # franky raises several unrelated types on connect
            raise RobotUnreachable(f"robot_ip {robot_ip}: connection failed: {exc}") from None
        finally:
            if not realtime:
                # libfranka raises the *calling* thread to real-time priority; every Python thread
                # started from it would inherit that and, without an RT kernel set up for it,
                # could starve the machine (the sim world shares it).
                os.sched_setscheduler(0, policy, param)
        self._duration = franky.Duration(max(1, int(round(command_timeout_s * 1000))))
        self._dynamics = relative_dynamics_factor  # per velocity motion; stops use the robot's full limits
        self._clock = MeasurementClock()
        self._gripper = GripperWorker(self._gripper, franky.Exception, gripper_speed)

    def _call(self, what: str, action):
        """Every robot call: franky exceptions and its RuntimeErrors (planner, network) become ArmError."""
        try:
            return action()
        except (self._franky.Exception, RuntimeError) as exc:
            error = classify_franky_error(self._franky, exc)
            raise ArmError(error.kind, f"{what}: {error}") from None

    def read_state(self) -> ArmState:
        state = self._call("reading the state", lambda: self._robot.state)
        stamp = self._clock.stamp(state.time.to_sec(), time.time())
        ee = state.O_T_EE
        return ArmState(
            stamp=stamp,
            joint_positions=np.asarray(state.q, dtype=np.float64),
            joint_velocities=np.asarray(state.dq, dtype=np.float64),
            tcp_pose=np.concatenate([ee.translation, ee.quaternion]),
            gripper=self._gripper.position,
        )

    def send_joint_velocity(self, joint_velocities: np.ndarray) -> None:
        f = self._franky
        motion = f.JointVelocityMotion(np.asarray(joint_velocities, dtype=float), duration=self._duration,
                                       relative_dynamics_factor=self._dynamics)
        self._call("joint velocity motion", lambda: self._robot.move(motion, asynchronous=True))

    def halt(self) -> None:
        stop = self._franky.JointVelocityStopMotion(relative_dynamics_factor=1.0)
        self._call("stop motion", lambda: self._robot.move(stop, asynchronous=True))

    def move_gripper(self, finger_position: float) -> None:
        self._gripper.move(finger_position)

    def recover(self) -> None:
        self._call("recover_from_errors", self._robot.recover_from_errors)

    def close(self) -> None:
        self._gripper.close()
        try:
            self.halt()
            self._robot.join_motion(timeout=2.0)
        except Exception:  # closing must not hide the error that made us close
            pass


class GripperWorker:
    """The gripper's network I/O in its own thread, so it can never hold up the arm's control cycle.

    franky's gripper calls block on a round trip, and a new target sent while the fingers still
    move can block until that move ends (seconds). Here the control thread only sets the latest
    target and reads the last measured width; the worker sends targets (the latest wins) and
    polls the width. A failed gripper command is raised, once, by the next :meth:`move`.

    An opening that never starts is sent again: franky's async moves run in threads of their own,
    and on a loaded machine an open could reach the gripper before the close it superseded, which
    left the fingers shut on the cube for good. A close that stops short is not resent: it is
    resting on an object.
    """

    POLL_PERIOD_S = 0.05
    RETRY_PERIOD_S = 0.5
    RESEND_AFTER_S = 1.0  # an opening this long without the fingers moving towards it is sent again
    MOVING_M = 5e-4  # per finger: more than this towards the target counts as moving

    def __init__(self, gripper, franky_exception: type[BaseException], speed: float):
        self._gripper, self._exception, self._speed = gripper, franky_exception, speed
        self.position = gripper.width / 2  # m per finger, last measured
        self._target: float | None = None
        self._sent: float | None = None
        self._sent_at, self._position_at_send = 0.0, self.position
        self._error: str | None = None
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gripper", daemon=True)
        self._thread.start()

    def move(self, finger_position: float) -> None:
        """Ask for ``finger_position`` (returns at once); raises ArmError for an earlier command that failed."""
        with self._wake:
            error, self._error = self._error, None
            if self._target is None or abs(finger_position - self._target) >= 1e-3:
                self._target = finger_position
                self._wake.notify()
        if error is not None:
            raise ArmError("gripper", f"gripper: {error}")

    def _opening_stalled(self) -> bool:
        return (self._sent is not None and self._sent > self.position + 2e-3
                and self.position - self._position_at_send < self.MOVING_M
                and time.monotonic() - self._sent_at > self.RESEND_AFTER_S)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while True:
            with self._wake:
                if self._target == self._sent and not self._closed:
                    self._wake.wait(self.POLL_PERIOD_S)
                if self._closed:
                    return
                target = self._target
            try:
                if target is not None and (target != self._sent or self._opening_stalled()):
                    self._sent, self._sent_at, self._position_at_send = target, time.monotonic(), self.position
                    self._gripper.move_async(2 * target, self._speed)
                self.position = self._gripper.width / 2
            except (self._exception, RuntimeError) as exc:  # franky raises both; reported through move()
                with self._wake:
                    self._error = str(exc)
                    self._wake.wait(self.RETRY_PERIOD_S)  # a lost connection: do not spin on it


def connect_with_retry(connect, deadline_s: float, on_wait, sleep=time.sleep, clock=time.monotonic,
                       first_delay_s: float = 0.25, max_delay_s: float = 2.0):
    """Call ``connect()`` until it returns, backing off between attempts, for at most ``deadline_s``.

    ``on_wait(message)`` is told about every failed attempt. The last RobotUnreachable is
    raised when the time is up, or at once when ``sleep`` returns True (an Event's ``wait``:
    shutting down).
    """
    start, delay = clock(), first_delay_s
    while True:
        try:
            return connect()
        except RobotUnreachable as exc:
            remaining = deadline_s - (clock() - start)
            if remaining <= 0:
                raise RobotUnreachable(f"{exc} (gave up after connect_timeout_s {deadline_s:g} s)") from None
            on_wait(f"{exc}; retrying for {remaining:.0f} s more")
            if sleep(min(delay, remaining)):
                raise RobotUnreachable(f"{exc} (stopped waiting: shutting down)") from None
            delay = min(2 * delay, max_delay_s)
