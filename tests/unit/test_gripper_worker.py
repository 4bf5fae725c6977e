"""The gripper's network I/O runs beside the control cycle, never in it, and never blocks it for good."""

import threading
import time

import pytest

from video_policy_ros.control.arm import ArmError, GripperWorker


class FrankyError(Exception):
    pass


class SlowGripper:
    """franky.Gripper's surface: ``move`` is a round trip that returns when the fingers stop.

    Like franky-sim, a move sent while another runs would leave the first one unanswered, so
    the fake counts how many moves are in flight at once.
    """

    def __init__(self, move_blocks_s: float = 0.0, fail: bool = False, object_width: float = 0.0):
        self.width_m, self.moves, self.move_blocks_s, self.fail = 0.08, [], move_blocks_s, fail
        self.object_width = object_width  # the fingers close on an object this wide
        self.in_flight = self.most_in_flight = 0
        self.answer = threading.Event()  # cleared: moves never return (a gripper that stopped answering)
        self.answer.set()
        self.width_fails = False
        self.moving = threading.Event()
        self._lock = threading.Lock()

    @property
    def width(self) -> float:
        if self.width_fails:
            raise FrankyError("UDP receive: Timeout")
        return self.width_m

    def move(self, width: float, speed: float) -> bool:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self.moving.set()
            self.moves.append(width)
            time.sleep(self.move_blocks_s)
            self.answer.wait()
            if self.fail:
                raise RuntimeError("Net Exception")  # what franky raises when the connection is gone
            self.width_m = max(width, self.object_width)
            return self.width_m == width
        finally:
            with self._lock:
                self.in_flight -= 1


def wait_until(predicate, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_blocking_gripper_never_holds_up_the_caller_and_moves_go_one_at_a_time_latest_target_first():
    gripper = SlowGripper(move_blocks_s=0.5)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        started = time.perf_counter()
        worker.move(0.0)
        gripper.moving.wait(1.0)
        for target in (0.04, 0.01, 0.02, 0.03):  # while the first move still runs
            worker.move(target)
        assert time.perf_counter() - started < 0.1
        assert worker.position == pytest.approx(0.04)  # last measured, not yet moved
        wait_until(lambda: worker.position == pytest.approx(0.03))
        assert gripper.moves == [0.0, 0.06]  # the intermediate targets were superseded, not queued
        assert gripper.most_in_flight == 1  # the next move waited for the one in flight
    finally:
        worker.close()


def test_a_failed_gripper_command_is_raised_once_by_the_next_move():
    gripper = SlowGripper(fail=True)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        worker.move(0.0)
        wait_until(lambda: worker.fault is not None)
        with pytest.raises(ArmError, match="Net Exception") as raised:
            worker.move(0.0)
        assert raised.value.kind == "gripper"
        worker.move(0.0)  # reported once; the same target is not re-sent
        assert gripper.moves == [0.0]
        assert "move to 0 mm failed" in worker.fault
    finally:
        worker.close()


def test_a_move_that_is_never_answered_becomes_one_fault_and_close_does_not_wait_for_it(monkeypatch):
    monkeypatch.setattr(GripperWorker, "MOVE_TIMEOUT_S", 0.3)
    monkeypatch.setattr(GripperWorker, "CLOSE_TIMEOUT_S", 0.3)
    gripper = SlowGripper()
    gripper.answer.clear()
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        started = time.perf_counter()
        worker.move(0.0)  # 8 cm at 0.1 m/s: 0.8 s of travel + 0.3 s
        assert time.perf_counter() - started < 0.05
        wait_until(lambda: worker.fault is not None, timeout_s=3.0)
        assert 1.0 < time.perf_counter() - started < 2.0
        with pytest.raises(ArmError, match="no answer to the move to 0 mm"):
            worker.move(0.04)
        worker.move(0.04)  # once
        assert gripper.moves == [0.0]  # nothing is sent while a move is unanswered
    finally:
        started = time.perf_counter()
        worker.close()
        closed_after = time.perf_counter() - started
    assert closed_after < GripperWorker.CLOSE_TIMEOUT_S + 0.2
    gripper.answer.set()  # the move returns late: the fault clears
    wait_until(lambda: gripper.in_flight == 0)


def test_an_unanswered_move_that_returns_late_clears_the_fault_and_the_latest_target_is_sent(monkeypatch):
    monkeypatch.setattr(GripperWorker, "MOVE_TIMEOUT_S", 0.1)
    gripper = SlowGripper()
    gripper.answer.clear()
    worker = GripperWorker(gripper, FrankyError, speed=1.0)
    try:
        worker.move(0.0)
        wait_until(lambda: worker.fault is not None)
        with pytest.raises(ArmError, match="no answer"):
            worker.move(0.02)
        gripper.answer.set()
        wait_until(lambda: worker.position == pytest.approx(0.02))
        assert worker.fault is None and gripper.moves == [0.0, 0.04]
    finally:
        worker.close()


def test_a_width_that_cannot_be_read_is_a_fault_until_it_can():
    gripper = SlowGripper()
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        gripper.width_fails = True
        wait_until(lambda: worker.fault is not None)
        assert "reading the width failed: UDP receive: Timeout" in worker.fault
        gripper.width_fails = False
        wait_until(lambda: worker.fault is None, timeout_s=3.0)
    finally:
        worker.close()


def test_faults_that_arrive_between_two_moves_are_all_raised():
    """A gripper that dies fails the move and the width read before the control cycle asks again: both are
    reported (a CI run once logged only the width error, and the failed move never reached the log)."""
    gripper = SlowGripper(fail=True)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        worker.move(0.0)
        wait_until(lambda: worker.fault is not None and "move" in worker.fault)
        gripper.width_fails = True
        wait_until(lambda: "reading the width failed" in worker.fault)
        with pytest.raises(ArmError) as raised:
            worker.move(0.0)
        assert "move to 0 mm failed: Net Exception" in str(raised.value)
        assert "reading the width failed: UDP receive: Timeout" in str(raised.value)
        worker.move(0.0)  # each reported once
    finally:
        worker.close()
