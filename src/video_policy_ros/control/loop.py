"""The control thread: connect → (read state → publish it → command the arm) at a fixed rate.

It runs outside any ROS executor so that message traffic cannot delay it. Inputs (chunks,
e-stop, reset) arrive from other threads through thread-safe methods; the robot's own
1 kHz loop (in franky) covers any jitter of this thread, because each velocity command
expires on its own. No exception ends it: a robot error latches the watchdog's stop and is
recovered (or not) by the watchdog's policy; the connection is retried until its deadline,
at start and after it drops (the stop stays latched across the reconnection).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from video_policy_ros.control.arm import ArmBackend, ArmError, RobotUnreachable, connect_with_retry
from video_policy_ros.control.commander import ArmCommander
from video_policy_ros.control.watchdog import ChunkRejected, JointCommand
from video_policy_ros.types import ActionChunk, ArmState

log = logging.getLogger(__name__)



class ControlLoop:
    def __init__(self, connect: Callable[[], ArmBackend], commander: ArmCommander, rate_hz: float,
                 on_state: Callable[[ArmState], None], on_command: Callable[[JointCommand], None] | None = None,
                 connect_timeout_s: float = 30.0, robot_name: str = "the robot", clock: Callable[[], float] = time.time):
        """``connect()`` returns a ready backend or raises RobotUnreachable; it is retried with backoff.

        Every cycle ``on_state`` gets the measured state, then ``on_command`` what was sent.
        """
        self._connect = connect
        self.arm: ArmBackend | None = None
        self.commander = commander
        self.watchdog = commander.watchdog
        self.period = 1.0 / rate_hz
        self._on_state = on_state
        self._on_command = on_command or (lambda command: None)
        self._connect_timeout = connect_timeout_s
        self._clock = clock
        self._lock = threading.Lock()  # guards commander + latest state
        self._state: ArmState | None = None
        self._last_cycle: float | None = None
        self._halt_sent = False
        self._connection_lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self.fatal: BaseException | None = None  # set when the loop cannot go on (the node exits)
        self._robot_name = robot_name
        self.status = f"waiting for {robot_name}"
        self.cycle_times: deque[float] = deque(maxlen=500)  # for diagnostics
        self.last_cycle_end: float | None = None  # time.monotonic(); a stale value means a robot call is blocking

    def start(self) -> None:
        """Connect and run in the control thread; returns at once (see ``wait_until_running``)."""
        self._thread.start()

    def wait_until_running(self, timeout_s: float) -> bool:
        """True once the first state has been read (False on timeout or a fatal connection error)."""
        deadline = time.monotonic() + timeout_s
        while self._state is None and self.fatal is None and time.monotonic() < deadline:
            self._stop.wait(0.01)
        return self._state is not None

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.arm is not None:
            self.arm.close()

    # ------------------------------------------------------------------ inputs (any thread)

    def submit_chunk(self, chunk: ActionChunk) -> None:
        """Raises ChunkRejected with the reason when the chunk is not executed."""
        with self._lock:
            if self._state is None:
                raise self.watchdog.reject("no_robot_state", "no robot state yet (still connecting)")
            self.commander.accept_chunk(chunk, self._clock(), self._state)

    def reject(self, reason: str, message: str) -> ChunkRejected:
        with self._lock:
            return self.watchdog.reject(reason, message)

    def estop(self, reason: str) -> None:
        with self._lock:
            newly_latched = self.watchdog.latch("estop", reason)
        if newly_latched:
            log.warning("stopped: %s", reason)

    def divergence(self, value: float) -> str | None:
        """One prediction's divergence (see Watchdog.divergence); the message of a slow-down or stop it starts."""
        with self._lock:
            message = self.watchdog.divergence(value)
        if message:
            log.warning("%s", message)
        return message

    def reset(self) -> tuple[bool, str]:
        with self._lock:
            arm = self.arm  # None while reconnecting
            if self._state is None or arm is None:
                return False, "no robot state yet"
            ok, message = self.watchdog.reset(self._state)
        if ok:
            try:
                arm.recover()
            except ArmError as exc:  # a robot that cannot recover stays stopped
                self._robot_error(exc)
                return False, f"robot error recovery failed: {exc}"
        return ok, message

    def counters(self) -> dict[str, int]:
        """A consistent copy of the watchdog's decision counters."""
        with self._lock:
            return dict(self.watchdog.counters)

    @property
    def last_stop(self) -> str:
        return self.watchdog.last_stop

    @property
    def latest_state(self) -> ArmState | None:
        return self._state

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        if not self._connect_arm():
            return
        next_cycle = time.monotonic()
        while not self._stop.is_set():
            if self._connection_lost:
                if not self._reconnect():
                    return
                next_cycle = time.monotonic()
            started = time.monotonic()
            self.step(self._clock())
            self.last_cycle_end = time.monotonic()
            self.cycle_times.append(self.last_cycle_end - started)
            next_cycle += self.period
            delay = next_cycle - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_cycle = time.monotonic()  # overran: do not burst to catch up

    def _connect_arm(self) -> bool:
        """Connect (with retries until the deadline); False when it gave up or the loop is closing."""
        try:
            arm = connect_with_retry(self._connect, self._connect_timeout, self._waiting, sleep=self._stop.wait)
        except RobotUnreachable as exc:
            if not self._stop.is_set():  # shutting down while waiting is not an error
                self.fatal = exc
            return False
        if self._stop.is_set():
            arm.close()
            return False
        self.arm = arm
        self.status = "running"
        return True

    def _reconnect(self) -> bool:
        """The connection dropped: publish no state (nothing is measured) and connect afresh. The network
        stop stays latched; the watchdog's recovery policy (or /controller/reset) clears it at rest."""
        log.warning("connection to %s lost; reconnecting for up to %g s", self._robot_name, self._connect_timeout)
        arm, self.arm = self.arm, None
        with self._lock:
            self._state = None
        self._last_cycle = None
        try:
            arm.close()
        except Exception:  # the old connection is gone anyway
            pass
        self._connection_lost = False
        if not self._connect_arm():
            return False
        self.counters_add("reconnections")
        log.warning("reconnected to %s", self._robot_name)
        return True

    def counters_add(self, key: str) -> None:
        with self._lock:
            self.watchdog.counters[key] += 1

    def _waiting(self, message: str) -> None:
        self.status = f"waiting for {self._robot_name}: {message}"
        log.info(self.status)

    def run_for(self, seconds: float, advance: Callable[[float], None], clock: Callable[[], float]) -> None:
        """Simulated time (the MuJoCo backend): one cycle, then ``advance`` the world by one period."""
        if self.arm is None:
            self.arm = self._connect()
        end = clock() + seconds
        while clock() < end:
            self.step(clock())
            advance(self.period)

    def step(self, now: float) -> None:
        """One control cycle. Never raises: robot errors latch a stop, anything else too."""
        try:
            self._cycle(now)
        except ArmError as exc:
            self._robot_error(exc)
            self._connection_lost = exc.kind == "network"
        except Exception as exc:  # a bug must not leave the arm commanded: latch, report, keep publishing
            log.exception("control cycle failed")
            self._robot_error(ArmError("internal", f"{type(exc).__name__}: {exc}"))

    def _robot_error(self, exc: ArmError) -> None:
        with self._lock:
            newly_latched = self.watchdog.latch(exc.kind, f"robot error ({exc.kind}): {exc}", robot_error=True)
            self.commander.stopped()
        self._halt_sent = True  # the robot stopped the motion itself; a stop motion would be refused
        if newly_latched:
            log.error("robot error (%s): %s", exc.kind, exc)

    def _cycle(self, now: float) -> None:
        state = self.arm.read_state()
        dt = self.period if self._last_cycle is None else min(max(now - self._last_cycle, 0.0), 2 * self.period)
        self._last_cycle = now
        with self._lock:
            self._state = state
            recover = self.watchdog.should_recover(state, now)
            command = self.commander.command(now, state, dt or self.period)
        if recover:
            self._recover(now)
        self._on_state(state)
        self._on_command(command)
        if command.halt:
            if not self._halt_sent:  # one stop motion; re-sending would restart its profile
                self._halt_sent = True
                self.arm.halt()
            return
        self._halt_sent = False
        self.arm.send_joint_velocity(command.joint_velocities)
        if command.gripper is not None:
            try:
                self.arm.move_gripper(command.gripper)
            except ArmError as exc:  # the gripper failing must not stop the arm: report and go on
                self.counters_add("gripper_errors")
                log.warning("%s", exc)

    def _recover(self, now: float) -> None:
        try:
            self.arm.recover()
        except ArmError as exc:
            ok, detail = False, str(exc)
        else:
            ok, detail = True, "recovered"
        with self._lock:
            self.watchdog.recovery_result(ok, now)
        log.warning("automatic recovery from a robot error: %s", detail)
