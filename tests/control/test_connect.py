"""Start order: the controller waits for the robot with backoff, then gives up with one clear error."""

import threading
import time

import pytest

from video_policy_ros.control.arm import RobotUnreachable, connect_with_retry, probe_fci


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_retries_with_backoff_until_the_robot_answers():
    clock, waits, attempts = FakeClock(), [], []

    def connect():
        attempts.append(clock.now)
        if clock.now < 3.0:
            raise RobotUnreachable("robot_ip 127.0.0.77: nothing on port 1337")
        return "robot"

    assert connect_with_retry(connect, 30.0, waits.append, sleep=clock.sleep, clock=clock) == "robot"
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    assert gaps == sorted(gaps) and gaps[0] < gaps[-1]  # backs off
    assert all("retrying" in w and "127.0.0.77" in w for w in waits)


def test_gives_up_at_the_deadline_with_the_reason():
    clock = FakeClock()

    def connect():
        raise RobotUnreachable("robot_ip 127.0.0.77: nothing on port 1337")

    with pytest.raises(RobotUnreachable, match="nothing on port 1337.*connect_timeout_s 10 s"):
        connect_with_retry(connect, 10.0, lambda message: None, sleep=clock.sleep, clock=clock)
    assert 10.0 <= clock.now < 10.5


def test_the_port_probe_fails_fast_on_a_closed_port():
    started = time.monotonic()
    with pytest.raises(RobotUnreachable, match="no Franka controller answers on TCP port 1337"):
        probe_fci("127.0.0.77", timeout_s=1.0)  # loopback, nobody listening
    assert time.monotonic() - started < 1.5


def test_shutting_down_ends_the_wait_at_once():
    stop = threading.Event()
    stop.set()

    def connect():
        raise RobotUnreachable("robot_ip 127.0.0.77: nothing on port 1337")

    with pytest.raises(RobotUnreachable, match="shutting down"):
        connect_with_retry(connect, 30.0, lambda message: None, sleep=stop.wait)
