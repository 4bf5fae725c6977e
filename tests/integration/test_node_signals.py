"""A node stopped by a signal exits 0 and logs which process sent it (a node that stops on its own
must say who stopped it)."""

import os
import signal
import socket
import threading
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


def test_a_node_stopped_while_a_franky_call_hangs_ends_with_its_own_exit_code(tmp_path):
    """A controller stopped while franky still waits for the robot's handshake (a listener that accepts
    and never answers) cannot join its control thread; it must still end with 0 and say why, not hang
    or abort in interpreter finalization."""
    listener = socket.create_server(("127.0.0.78", 1337))  # the FCI port; accepts, never answers
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    log = tmp_path / "controller.log"
    process = node_process("controller", {"robot_ip": "127.0.0.78", "connect_timeout_s": 120.0}, log)
    try:
        wait_for(lambda: accepted, 60, "the controller to open the FCI connection")
        time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, log.read_text()[-2000:]
    finally:
        stop(process)
        listener.close()
        for connection in accepted:
            connection.close()
    text = log.read_text()
    assert "thread(s) control-loop still running after clean-up" in text, text[-2000:]
    assert "Traceback" not in text


def test_only_the_stacks_own_workers_keep_a_node_from_a_normal_exit():
    """tqdm's monitor thread (the inference node hashes its checkpoint with a progress bar) waits in Python and
    must not turn every Ctrl-C into an exit past finalization with a warning."""
    from video_policy_ros.control.loop import ControlLoop
    from video_policy_ros.nodes.signals import _is_stack_worker

    stop_waiting = threading.Event()
    library = threading.Thread(target=stop_waiting.wait, name="tqdm_monitor", daemon=True)
    own = threading.Thread(target=ControlLoop.close, name="control-loop", daemon=True)  # never started: only its target counts
    assert not _is_stack_worker(library) and _is_stack_worker(own)
