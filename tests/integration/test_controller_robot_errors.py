"""Robot errors from outside: the controller process against an FR3 that faults like a real one.

``video_policy_ros/sim/faulty_fr3.py`` serves franky-sim's FR3 over the libfranka protocol with
the robot's error paths: a virtual wall that provokes a Cartesian reflex when the TCP crosses it,
a motion-generator error injected on SIGUSR1, a dropped connection, a gripper that hangs or dies.
libfranka raises them in the controller exactly as on a real arm; each must be recovered without
restarting the node. The reflex and the motion-generator error are preflight's ``robot_errors``
step, run here with the shipped configuration.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from video_policy_ros.config import ControllerConfig, PreflightConfig, default_config_path
from video_policy_ros.nodes.contract_probe import observer_node
from video_policy_ros.preflight.observations import wait_for
from video_policy_ros.preflight.processes import log_tails, node_process, robot_ip_for_this_process, start_module, stop
from video_policy_ros.preflight.scenarios import Setup, run_session
from video_policy_ros.types import ActionChunk

pytestmark = pytest.mark.integration
WALL_Z = 0.35


def start_faulty_fr3(ip: str, log_path, *options: str) -> subprocess.Popen:
    return start_module("video_policy_ros.sim.faulty_fr3", [ip, "--wall-z", str(WALL_Z), *options], log_path)


@dataclass
class Rig:
    """The faulty FR3 and the controller process connected to it."""

    ip: str
    logs: Path
    robot: subprocess.Popen
    controller: subprocess.Popen

    def restart_robot(self) -> None:
        self.robot = start_faulty_fr3(self.ip, self.logs / "robot_again.log")


@pytest.fixture
def rig(tmp_path):
    ip = robot_ip_for_this_process()
    rig = Rig(ip, tmp_path, start_faulty_fr3(ip, tmp_path / "robot.log"),
              node_process("controller", {"robot_ip": ip}, tmp_path / "controller.log"))
    try:
        yield rig
    finally:
        stop(rig.controller)
        stop(rig.robot)
        print(log_tails(tmp_path, ("controller", "robot", "robot_again")))


def test_reflex_and_motion_generator_error_are_recovered_without_a_restart(tmp_path):
    setup = Setup(default_config_path("controller"), default_config_path("inference"), default_config_path("sim_world"),
                  ControllerConfig(), PreflightConfig(), tmp_path)
    try:
        results = run_session("robot_errors", ["robot_errors"], setup)
    finally:
        print(log_tails(tmp_path, ("controller", "robot")))
    print("\n".join(check.row() for check in results))
    assert [c.name for c in results] == ["recovers from a cartesian reflex", "recovers from a motion generator error",
                                         "follows chunks after both recoveries", "controller process still running"]
    assert all(check.passed for check in results), [check.summary() for check in results if not check.passed]


@pytest.mark.parametrize("drop", ["robot restarts", "robot stalls"])
def test_a_dropped_connection_is_reconnected_and_recovered_without_a_restart(rig, drop):
    """robot restarts: the robot vanishes mid-stream (a pulled cable, a crashed sim) and comes back.
    robot stalls: its state stream stops for 3 s (a starved robot server on a loaded machine, SIGSTOP) and the
    controller's UDP receive times out while the robot stays up; the reconnection meets the same server."""
    with observer_node("connection_dropper") as (obs, driver):
        wait_for(lambda: len(obs.poses) > 50 and obs.diagnostics, 60, "/ee_pose and /diagnostics")
        if drop == "robot restarts":
            rig.robot.kill()
            rig.robot.wait()
            wait_for(lambda: "waiting for the robot" in obs.diagnostics[-1][1], 15,
                     "'waiting for the robot' after the drop")
            assert "network" in obs.value("last_stop"), obs.value("last_stop")
            rig.restart_robot()
        else:
            rig.robot.send_signal(signal.SIGSTOP)
            time.sleep(3.0)
            rig.robot.send_signal(signal.SIGCONT)
            wait_for(lambda: "network" in obs.value("last_stop"), 15, "the network stop after the stall")
        wait_for(lambda: obs.counter("reconnections") >= 1, 60, "the controller to reconnect")
        wait_for(lambda: obs.diagnostics[-1][1] == "holding", 15, "the automatic recovery of the network stop")
        resumed = time.time()
        target = obs.pose_now()[:3] + [0.0, 0.06, 0.0]
        driver.send(driver.line(target, speed=0.1))
        wait_for(lambda: np.linalg.norm(obs.pose_now()[:3] - target) < 0.01, 15, "the arm to follow a chunk again")
        assert any(r > resumed for r, _, _ in obs.poses)
        assert rig.controller.poll() is None, "the controller process ended"


@pytest.mark.parametrize("fault, error", [("silent", "no answer to the move to 0 mm"),
                                          ("dies", "move to 0 mm failed")])
def test_a_gripper_that_hangs_or_dies_mid_move_costs_neither_the_control_rate_nor_the_shutdown(tmp_path, fault, error):
    ip = robot_ip_for_this_process()
    robot = start_faulty_fr3(ip, tmp_path / "robot.log", "--gripper-fault", fault)
    controller = node_process("controller", {"robot_ip": ip}, tmp_path / "controller.log")
    try:
        with observer_node(f"gripper_{fault}") as (obs, driver):
            wait_for(lambda: len(obs.poses) > 50, 60, "/ee_pose")
            start = obs.pose_now()[:3]
            line = driver.line(start + [0.0, 0.04, 0.0], speed=0.1)
            driver.send(ActionChunk(line.stamp, line.dt, line.poses, np.zeros(len(line.poses))))  # close the fingers
            wait_for(lambda: obs.value("gripper") not in ("", "ok"), 20, "the gripper fault on /diagnostics")
            fault_seen = time.time()
            reported = obs.value("gripper")
            assert error in reported and "\n" not in reported, reported
            assert obs.diagnostics[-1][1].startswith("gripper: "), obs.diagnostics[-1]
            driver.go(start + [0.0, -0.04, 0.0], speed=0.1)  # the arm still follows chunks
            time.sleep(1.0)
            window = [t for t, _, _ in obs.joint_states if t > fault_seen]
            rate = (len(window) - 1) / (window[-1] - window[0])
            print(f"{fault}: /joint_states at {rate:.0f} Hz after the gripper fault; diagnostics: {reported}")
            assert rate > 150, f"the control cycle lost its rate: /joint_states at {rate:.0f} Hz"
        started = time.monotonic()
        controller.send_signal(signal.SIGINT)
        code = controller.wait(timeout=15)
        stopped_after = time.monotonic() - started
        assert code == 0 and stopped_after < 5.0, f"exit {code} after {stopped_after:.1f} s"
        log = (tmp_path / "controller.log").read_text()
        assert "Traceback" not in log
        assert sum(error in line for line in log.splitlines()) == 1, "the gripper error is logged once"
    finally:
        stop(controller)
        stop(robot)
        print(log_tails(tmp_path, ("controller", "robot")))
