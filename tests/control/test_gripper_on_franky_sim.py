"""The gripper worker through the real franky against franky-sim served in the same process.

franky-sim never answers a gripper move that a newer move superseded, and franky's
``move_async`` joins the previous move's thread when the next one starts: alternating targets
faster than the fingers move left the gripper thread blocked for good (and, when a future was
destroyed by the garbage collector with the GIL held, the whole process). The worker sends one
move at a time, so the fingers always end at the last target.
"""

import time

import franky
import pytest

from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.config import SimWorldConfig
from video_policy_ros.control.arm import GripperWorker
from video_policy_ros.sim.world import SimWorld


def test_targets_changing_faster_than_the_fingers_move_end_at_the_last_target():
    ip = robot_ip_for_this_process()
    with SimWorld(SimWorldConfig(robot_ip=ip, cameras=[])) as _world:
        worker = GripperWorker(franky.Gripper(ip), franky.Exception, speed=0.1)
        try:
            for i in range(20):  # a flip every 0.1 s; one stroke takes 0.4 s
                worker.move(0.0 if i % 2 == 0 else 0.04)
                time.sleep(0.1)
            worker.move(0.01)
            deadline = time.monotonic() + 10.0
            while abs(worker.position - 0.01) > 1.5e-3 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert worker.position == pytest.approx(0.01, abs=1.5e-3)
            assert worker.fault is None
        finally:
            started = time.monotonic()
            worker.close()
            assert time.monotonic() - started < 2.0
