"""The gripper's network I/O runs beside the control cycle, never in it."""

import threading
import time

import pytest

from video_policy_ros.control.arm import ArmError, GripperWorker


class FrankyError(Exception):
    pass


class SlowGripper:
    """franky.Gripper's surface: every call is a round trip, a move can block for a second."""

    def __init__(self, move_blocks_s: float = 0.0, fail: bool = False, object_width: float = 0.0,
                 ignored_moves: int = 0):
        self.width_m, self.moves, self.move_blocks_s, self.fail = 0.08, [], move_blocks_s, fail
        self.object_width = object_width  # the fingers close on an object this wide
        self.ignored_moves = ignored_moves  # this many commands get lost (overtaken by an older one)
        self.moving = threading.Event()

    @property
    def width(self) -> float:
        return self.width_m

    def move_async(self, width: float, speed: float) -> None:
        self.moving.set()
        time.sleep(self.move_blocks_s)
        if self.fail:
            raise RuntimeError("Net Exception")  # what franky raises when the connection is gone
        self.moves.append(width)
        if self.ignored_moves:
            self.ignored_moves -= 1
            return
        self.width_m = max(width, self.object_width)


def wait_until(predicate, timeout_s=2.0):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_blocking_gripper_never_holds_up_the_caller_and_the_latest_target_wins():
    gripper = SlowGripper(move_blocks_s=0.5)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        started = time.perf_counter()
        worker.move(0.0)
        gripper.moving.wait(1.0)
        for target in (0.04, 0.01, 0.02, 0.03):  # while the first move still blocks
            worker.move(target)
        assert time.perf_counter() - started < 0.1
        assert worker.position == pytest.approx(0.04)  # last measured, not yet moved
        wait_until(lambda: gripper.moves[-1:] == [0.06])
        assert gripper.moves == [0.0, 0.06]  # the intermediate targets were superseded, not queued
        wait_until(lambda: worker.position == pytest.approx(0.03))
    finally:
        worker.close()


def test_a_failed_gripper_command_is_raised_once_by_the_next_move():
    gripper = SlowGripper(fail=True)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        worker.move(0.0)
        time.sleep(0.2)
        with pytest.raises(ArmError, match="Net Exception") as raised:
            worker.move(0.0)
        assert raised.value.kind == "gripper"
        worker.move(0.0)  # reported once; the same target is not re-sent
        assert worker._thread.is_alive()
    finally:
        worker.close()


def test_an_opening_that_never_starts_is_sent_again_but_a_close_resting_on_an_object_is_not():
    gripper = SlowGripper(object_width=0.06)
    worker = GripperWorker(gripper, FrankyError, speed=0.1)
    try:
        worker.move(0.0)
        wait_until(lambda: worker.position == pytest.approx(0.03))  # resting on the object
        time.sleep(2.5 * GripperWorker.RESEND_AFTER_S)
        assert gripper.moves == [0.0]
        gripper.ignored_moves = 1
        worker.move(0.04)  # lost: the fingers stay on the object ...
        wait_until(lambda: worker.position == pytest.approx(0.04), timeout_s=4 * GripperWorker.RESEND_AFTER_S)
        assert gripper.moves == [0.0, 0.08, 0.08]  # ... until it is sent again
    finally:
        worker.close()
