"""A node stopped by a signal exits 0 and logs which process sent it (a node that stops on its own
must say who stopped it)."""

import os
import signal
import time

import pytest

from video_policy_ros.preflight.observations import wait_for
from video_policy_ros.preflight.processes import node_process, stop

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_node_ended_by_a_signal_names_the_sender(tmp_path, sig):
    log = tmp_path / "controller.log"
    # Nothing listens on 127.0.0.77: the controller keeps waiting for the robot.
    process = node_process("controller", {"robot_ip": "127.0.0.77", "connect_timeout_s": 120.0}, log)
    try:
        wait_for(lambda: "retrying" in log.read_text(), 60, "the controller to wait for the robot")
        started = time.monotonic()
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0, log.read_text()[-2000:]
        assert time.monotonic() - started < 5.0
    finally:
        stop(process)
    text = log.read_text()
    assert f"received {sig.name} from pid {os.getpid()} (" in text, text[-2000:]
    assert "Traceback" not in text
