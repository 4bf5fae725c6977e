"""The control thread: read state → publish it → command the arm, at a fixed rate.

It runs outside any ROS executor so that message traffic cannot delay it. Inputs
(chunks, e-stop, reset) arrive from other threads through thread-safe methods;
the robot's own 1 kHz loop (in franky) covers any jitter of this thread, because
each velocity command expires on its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from video_policy_ros.control.arm import ArmBackend, ArmError
from video_policy_ros.control.commander import ArmCommander, ChunkRejected
from video_policy_ros.types import ActionChunk, ArmState

log = logging.getLogger(__name__)


class ControlLoop:
    FAULT_RETRY_S = 0.5  # after a robot error, poll the robot at this period instead of the loop rate

    def __init__(
        self,
        arm: ArmBackend,
        commander: ArmCommander,
        rate_hz: float,
        on_state: Callable[[ArmState], None],
        clock: Callable[[], float] = time.time,
    ):
        self.arm = arm
        self.commander = commander
        self.period = 1.0 / rate_hz
        self._on_state = on_state
        self._clock = clock
        self._lock = threading.Lock()  # guards commander + latest state
        self._state: ArmState | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="control-loop", daemon=True)
        self._error: BaseException | None = None
        self.cycle_times: deque[float] = deque(maxlen=500)  # for diagnostics
        self._halt_sent = False

    def start(self) -> None:
        self._state = self.arm.read_state()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self.arm.close()

    # ------------------------------------------------------------------ inputs (any thread)

    def submit_chunk(self, chunk: ActionChunk) -> None:
        """Raises ChunkRejected with the reason when the chunk is not executed."""
        with self._lock:
            if self._state is None:
                raise ChunkRejected("no robot state yet")
            self.commander.accept_chunk(chunk, self._clock(), self._state)

    def estop(self, reason: str) -> None:
        with self._lock:
            newly_latched = self.commander.latch_stop(reason)
        if newly_latched:
            log.warning("stopped: %s", reason)

    def reset(self) -> tuple[bool, str]:
        with self._lock:
            if self._state is None:
                return False, "no robot state yet"
            ok, message = self.commander.reset(self._state)
        if ok:
            try:
                self.arm.recover()
            except Exception as exc:  # a robot that cannot recover stays stopped
                self.estop(f"recovery failed: {exc}")
                return False, f"robot error recovery failed: {exc}"
        return ok, message

    @property
    def latest_state(self) -> ArmState | None:
        return self._state

    @property
    def error(self) -> BaseException | None:
        return self._error

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        next_cycle = time.monotonic()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._cycle()
            except ArmError as exc:
                # A robot fault ends in the same place as an e-stop: halted, latched.
                self.estop(f"robot error: {exc}")
                self._stop.wait(self.FAULT_RETRY_S)
            except BaseException as exc:
                self._error = exc
                log.exception("control loop crashed; the arm halts on its own after the command timeout")
                return
            self.cycle_times.append(time.monotonic() - started)
            next_cycle += self.period
            delay = next_cycle - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_cycle = time.monotonic()  # overran: do not burst to catch up

    def _cycle(self) -> None:
        state = self.arm.read_state()
        with self._lock:
            self._state = state
            command = self.commander.command(self._clock(), state)
        self._on_state(state)
        if command.halt:
            if not self._halt_sent:  # one stop motion; re-sending would restart its profile
                self.arm.halt()
                self._halt_sent = True
            return
        self._halt_sent = False
        self.arm.send_velocity(command.linear, command.angular)
        if command.gripper is not None:
            self.arm.move_gripper(command.gripper)
