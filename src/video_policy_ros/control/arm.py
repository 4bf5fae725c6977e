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

    @property
    def gripper_fault(self) -> str | None:
        """The gripper's current problem, one line (None: it answers, or there is no gripper)."""
        return None

    @property
    def time_factor(self) -> float | None:
        """Robot seconds per wall-clock second lately (None: not measured)."""
        return None


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


MAX_STAMP_LAG_S = 0.05  # a state's stamp is never more than this behind the time it was read
TIME_FACTOR_WINDOW_S = 1.0  # the robot's time factor is measured over windows this long


class MeasurementClock:
    """Wall-clock stamps for states measured on the robot's own clock.

    ``time.time()`` taken after reading a state is late by however long this thread was
    held up (tens of ms on a loaded machine), which shows up as speed spikes in /ee_pose.
    The robot's clock (libfranka's state time) is exact, so the stamp is robot time plus an
    offset: the smallest ``read time - robot time`` seen, allowed to creep up by ``slack``
    per robot second (clock drift) and never more than ``max_lag`` behind the read time
    (a simulated FR3 on a loaded machine runs slower than real time, or stalls).
    """

    def __init__(self, slack: float = 0.01, max_lag: float = MAX_STAMP_LAG_S, factor_window_s: float = TIME_FACTOR_WINDOW_S):
        self._slack = slack
        self._max_lag = max_lag
        self._offset: float | None = None
        self._last_robot_time = 0.0
        self._factor_window_s = factor_window_s
        self._window_start: tuple[float, float] | None = None  # (read time, robot time)
        # Robot seconds per wall second over the last window: 1 for a real FR3; a simulated one on a loaded
        # machine runs slower, and then its motions take longer in wall time (and the stamps, held within
        # max_lag of the read time, advance with the wall clock, not with the robot).
        self.time_factor: float | None = None

    def stamp(self, robot_time: float, read_time: float) -> float:
        if self._window_start is None or robot_time < self._window_start[1]:  # first read, or a new connection
            self._window_start = (read_time, robot_time)
        elif read_time - self._window_start[0] >= self._factor_window_s:
            self.time_factor = (robot_time - self._window_start[1]) / (read_time - self._window_start[0])
            self._window_start = (read_time, robot_time)
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

    @property
    def gripper_fault(self) -> str | None:
        return self._gripper.fault

    @property
    def time_factor(self) -> float | None:
        return self._clock.time_factor

    def recover(self) -> None:
        self._call("recover_from_errors", self._robot.recover_from_errors)

    def close(self) -> None:
        self._gripper.close()
        try:
            self.halt()
            self._robot.join_motion(timeout=2.0)
        except Exception:  # closing must not hide the error that made us close
            pass
        # A robot serves one client: the connection must close now, not whenever the last reference to
        # this arm goes (a reconnection still holds it, and so can an exception's traceback).
        self._robot = None


class GripperWorker:
    """The gripper's network I/O in threads of its own, so it can never hold up the arm's control cycle.

    The control thread only sets the latest target (:meth:`move`) and reads the last measured
    width (``position``). One thread sends the moves, one polls the width.

    Moves are sent one at a time, with franky's *synchronous* call (it releases the GIL), and a
    new target waits until the move in flight has ended (the fingers reached it or rest on an
    object). Never two moves in flight: a gripper server may leave a superseded move unanswered
    (franky-sim does), and franky's ``move_async`` joins the previous move's thread when the next
    one starts, and again when a future is destroyed. That join, run by the garbage collector with
    the GIL held while franky-sim served in the same process, deadlocked the whole process.
    No future exists here, so no destructor can ever wait on a move.

    Every move has a deadline (its travel time at ``speed`` plus ``MOVE_TIMEOUT_S``). A move
    still unanswered after it, or a failed call, becomes ``fault``: one line, reported once by
    the next :meth:`move`, kept until the gripper answers again. A move that never returns
    leaves its thread blocked in franky (it cannot be cancelled); the worker then sends nothing
    more, and :meth:`close` does not wait for it for long.
    """

    POLL_PERIOD_S = 0.05
    RETRY_PERIOD_S = 0.5  # after a failed call: do not spin on a lost connection
    MOVE_TIMEOUT_S = 3.0  # on top of the travel time: a real hand settles well within this
    # close() waits this long for both threads: a width read times out after 1 s in libfranka, a
    # move in flight ends within its travel time. A franky call that returns while the interpreter
    # shuts down aborts the process (std::terminate), so it must not be left running if it can end.
    CLOSE_TIMEOUT_S = 2.5

    def __init__(self, gripper, franky_exception: type[BaseException], speed: float):
        self._gripper, self._exception, self._speed = gripper, franky_exception, speed
        self.position = gripper.width / 2  # m per finger, last measured
        self._target: float | None = None
        self._sent: float | None = None
        self._move_deadline: float | None = None  # time.monotonic() by which the move in flight must end
        self._faults: dict[str, str] = {}  # "move" / "state" → one line, while it lasts
        self._unreported: list[str] = []  # new faults, raised once by the next move() (none may be lost)
        self._wake = threading.Condition()
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._send_moves, name="gripper-move", daemon=True),
                         threading.Thread(target=self._poll_width, name="gripper-state", daemon=True)]
        for thread in self._threads:
            thread.start()

    def move(self, finger_position: float) -> None:
        """Ask for ``finger_position`` (returns at once); raises ArmError, once, for a new fault."""
        with self._wake:
            errors, self._unreported = self._unreported, []
            if self._target is None or abs(finger_position - self._target) >= 1e-3:
                self._target = finger_position
                self._wake.notify()
        if errors:
            raise ArmError("gripper", f"gripper: {'; '.join(errors)}")

    def close(self) -> None:
        """Stop both threads; a move that never returns is left behind (see CLOSE_TIMEOUT_S)."""
        with self._wake:
            self._closed.set()
            self._wake.notify_all()
        deadline = time.monotonic() + self.CLOSE_TIMEOUT_S
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        self._gripper = None  # its connection closes with it (a thread still blocked in a call holds its own)

    @property
    def fault(self) -> str | None:
        """The gripper's current problem, one line (None: it answers)."""
        return "; ".join(self._faults.values()) or None

    def _set_fault(self, kind: str, fault: str | None) -> None:
        with self._wake:
            if fault is None:
                self._faults.pop(kind, None)
            elif self._faults.get(kind) != fault:
                self._faults[kind] = fault
                self._unreported.append(fault)

    def _send_moves(self) -> None:
        while True:
            with self._wake:
                while (self._target is None or self._target == self._sent) and not self._closed.is_set():
                    self._wake.wait()
                if self._closed.is_set():
                    return
                target = self._sent = self._target
                travel_s = abs(2 * (target - self.position)) / max(self._speed, 1e-3)
                self._move_deadline = time.monotonic() + travel_s + self.MOVE_TIMEOUT_S
            try:
                self._gripper.move(2 * target, self._speed)  # False: stopped short (on an object)
            except (self._exception, RuntimeError) as exc:  # franky raises both
                self._move_deadline = None
                self._set_fault("move", f"move to {2 * target * 1e3:.0f} mm failed: {exc}")
                self._closed.wait(self.RETRY_PERIOD_S)
            else:
                self._move_deadline = None
                self._set_fault("move", None)

    def _poll_width(self) -> None:
        while not self._closed.wait(self.POLL_PERIOD_S):
            deadline = self._move_deadline
            if deadline is not None and time.monotonic() > deadline:
                self._set_fault("move", f"no answer to the move to {2 * (self._sent or 0.0) * 1e3:.0f} mm within "
                                        f"{self.MOVE_TIMEOUT_S:g} s of its travel time; no gripper command is sent "
                                        "until it answers (check the gripper's connection)")
            try:
                self.position = self._gripper.width / 2
            except (self._exception, RuntimeError) as exc:
                self._set_fault("state", f"reading the width failed: {exc}")
                self._closed.wait(self.RETRY_PERIOD_S)
            else:
                self._set_fault("state", None)


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
