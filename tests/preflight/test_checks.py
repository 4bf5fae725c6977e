"""Preflight's checks as pure functions of a recording: each passes on a safe recording and names the
figure on an unsafe one, and a step that recorded too little is a failure, never a pass."""

import numpy as np
import pytest

from video_policy_ros.config import ControllerConfig, PreflightConfig
from video_policy_ros.control.kinematics import HOME_JOINTS, FR3Kinematics
from video_policy_ros.errors import StackError
from video_policy_ros.preflight import checks
from video_policy_ros.preflight.command import private_domain_id, selected_steps
from video_policy_ros.preflight.observations import Observations

SITE = PreflightConfig()
HOME_TCP_JACOBIAN = FR3Kinematics().jacobian(HOME_JOINTS)[:3]


def joint_velocity_for(speed: float) -> np.ndarray:
    """Joint velocities that move the TCP along +x at ``speed`` from the home configuration."""
    return np.linalg.pinv(HOME_TCP_JACOBIAN) @ np.array([speed, 0.0, 0.0])


def moving_along_x(speed: float, seconds: float = 1.0, rate: float = 200.0) -> Observations:
    """A recording of the TCP moving along +x at ``speed`` (header stamps = receive times)."""
    obs = Observations()
    for t in np.arange(0.0, seconds, 1 / rate):
        obs.poses.append((t, t, np.array([0.4 + speed * t, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])))
        obs.joint_states.append((t, HOME_JOINTS, joint_velocity_for(speed)))
    start, target = np.array([0.4, 0.0, 0.3]), np.array([0.4 + speed * seconds, 0.0, 0.3])
    obs.events["faces"] = {"x_max": (start, target, 0.0, seconds)}
    return obs


def test_the_speed_check_holds_the_lower_of_the_site_limit_and_the_controller_cap():
    slow_cap = ControllerConfig(max_linear_speed=0.1)
    assert checks.speed_limit(slow_cap, SITE) == pytest.approx(0.104)
    assert checks.speed_limit(ControllerConfig(max_linear_speed=2.0), SITE) == pytest.approx(0.26)
    speed, line = checks.faces(moving_along_x(0.2), slow_cap, SITE)
    assert speed.name == "TCP speed toward x_max" and speed.measured == pytest.approx(0.2, rel=1e-3)
    assert not speed.passed and "must be <= 0.104 m/s" in speed.summary()
    assert line.passed and line.measured == pytest.approx(0.0, abs=1e-9)
    assert checks.faces(moving_along_x(0.2), ControllerConfig(), SITE)[0].passed


def test_a_step_that_did_not_measure_fails_with_its_reason():
    check = checks.not_measured("at rest 3.8 s into chunk silence", 0.01, "rad/s", True, "the arm was not moving")
    assert not check.passed and check.summary() == "at rest 3.8 s into chunk silence (not measured: the arm was not moving)"
    assert not checks.Check("x", float("nan"), 1.0, "m", True).passed
    obs = Observations()
    obs.events.update(silence_sent=0.0, silence_end=6.0)
    obs.joint_states += [(t, np.zeros(7), np.zeros(7)) for t in np.arange(0.0, 6.0, 0.01)]  # never moved
    (silence,) = checks.silence(obs, ControllerConfig(), SITE)
    assert not silence.passed and "not moving" in silence.detail


def test_the_floor_checks_catch_a_workspace_the_arm_cannot_reach():
    below_table = ControllerConfig(workspace={"min": [0.32, -0.22, -0.05], "max": [0.58, 0.22, 0.53]})
    obs = Observations()
    obs.events.update(floor_start=0.0, floor_end=1.0)
    obs.poses += [(t, t, np.array([0.45, 0.0, 0.3 - 0.29 * t, 1, 0, 0, 0])) for t in np.linspace(0, 1, 100)]  # stops at 1 cm
    above, reaches = checks.floor(obs, below_table, SITE)
    assert above.passed and not reaches.passed
    assert reaches.summary() == "TCP reaches the workspace floor (0.01, must be <= -0.045 m)"
    assert all(c.passed for c in checks.floor(obs, ControllerConfig(workspace={"min": [0.32, -0.22, 0.01],
                                                                              "max": [0.58, 0.22, 0.53]}), SITE))


def test_rows_and_the_report_entry_carry_the_figure_the_limit_and_the_verdict():
    check = checks.Check("TCP speed toward x_max", 0.31, 0.26, "m/s", True, "chunk asked for 2x the cap")
    assert check.row().startswith("FAIL  TCP speed toward x_max") and "<= 0.26 m/s" in check.row()
    assert check.as_dict() == {"name": "TCP speed toward x_max", "measured": 0.31, "limit": 0.26, "unit": "m/s",
                               "at_most": True, "detail": "chunk asked for 2x the cap", "passed": False}


def test_steps_are_chosen_by_name_in_the_suites_order(monkeypatch):
    assert selected_steps("estop, bad_chunks") == ["bad_chunks", "estop"]
    with pytest.raises(StackError, match="unknown step"):
        selected_steps("estop,speed")


def test_the_sim_twin_never_shares_the_users_dds_domain(monkeypatch):
    for current in range(102):
        monkeypatch.setenv("ROS_DOMAIN_ID", str(current))
        assert private_domain_id() != current and 50 <= private_domain_id() <= 100


def test_deadlines_and_speeds_are_taken_on_the_robots_clock():
    """A simulated FR3 on a loaded machine runs slower than real time (the controller reports robot_time_factor):
    a halt due 0.3 s after an event is due that long on the robot's clock, and a speed per stamp second is that
    much lower than the robot's own."""
    obs = moving_along_x(0.1)
    assert obs.after_robot_seconds(10.0, 0.5) == 10.5  # no reports: a real FR3 keeps time
    obs.diagnostics += [(0.5, "ok", {"robot_time_factor": "0.50"}), (1.0, "ok", {"robot_time_factor": "0.25"})]
    assert obs.after_robot_seconds(0.0, 0.25) == pytest.approx(0.5)
    assert obs.after_robot_seconds(0.0, 0.375) == pytest.approx(1.0)
    assert obs.after_robot_seconds(0.0, 0.5) == pytest.approx(1.125)  # past the last report: 1x
    assert obs.robot_time_factor(0.0, 1.0) == 0.25
    speed, _ = checks.faces(obs, ControllerConfig(max_linear_speed=0.2), SITE)
    assert "robot clock down to 0.25x real time" in speed.detail
