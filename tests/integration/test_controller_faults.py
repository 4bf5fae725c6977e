"""The controller process against the sim world process, driven from this test process only
through the topic contract, with nothing else publishing chunks (issue 11's acceptance).

These are preflight's controller steps (``video_policy_ros.preflight``), run once for the module
with the shipped configuration: the same code a user runs with ``video-policy preflight`` on their
own, so the shipped suite and the tests cannot drift apart. Each test asserts one step's checks.
The controller is started before the sim world, as launch may do: it must wait for the robot.
"""

from __future__ import annotations

import pytest

from video_policy_ros.config import ControllerConfig, PreflightConfig, default_config_path
from video_policy_ros.preflight.checks import Check
from video_policy_ros.preflight.processes import log_tails
from video_policy_ros.preflight.scenarios import STEPS, Setup, run_session

pytestmark = pytest.mark.integration
CONTROLLER_STEPS = [name for name, step in STEPS.items() if step.session == "controller"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, Check]:
    tmp = tmp_path_factory.mktemp("controller_faults")
    setup = Setup(default_config_path("controller"), default_config_path("inference"), default_config_path("sim_world"),
                  ControllerConfig(), PreflightConfig(), tmp)
    try:
        checks = run_session("controller", CONTROLLER_STEPS, setup)
    finally:
        print(log_tails(tmp, ("controller", "sim_world")))
    print("\n".join(check.row() for check in checks))
    return {check.name: check for check in checks}


def assert_passed(results: dict[str, Check], *names: str) -> None:
    for name in names:
        assert name in results, f"no check '{name}': {[c.summary() for c in results.values() if not c.passed]}"
        check = results[name]
        print(check.row())
        assert check.passed, check.summary()


def test_bad_chunks_are_rejected_reported_and_do_not_move_the_arm(results):
    assert_passed(results, *[f"rejects {kind} chunks" for kind in
                             ("non-finite", "outside-workspace", "start-jump", "too-old", "future-stamp", "malformed")],
                  "arm stays put while only bad chunks arrive")


def test_speed_cap_and_straight_line_to_every_face(results):
    faces = [name for name in results if name.startswith("TCP speed toward ")]
    assert len(faces) == 7  # 6 faces + the far top corner
    assert results[faces[0]].limit == pytest.approx(ControllerConfig().max_linear_speed * 1.04)
    assert_passed(results, *faces, "TCP stays on a straight chunk's line")


def test_the_measured_tcp_stays_in_the_workspace_box_when_chunks_stop_abruptly_at_its_floor(results):
    """Chunks only hold points inside the box; the arm's own dynamics (a stop from speed, the lag of the
    measured pose behind the set-point) once carried the TCP 1-2 cm past such a stop."""
    assert_passed(results, "TCP stays above the workspace floor", "TCP reaches the workspace floor")


def test_chunks_aiming_a_little_below_the_floor_are_moved_onto_it_not_refused(results):
    """A policy that aims 1 cm below the floor (the shipped model's chunks did) must not stop the arm."""
    assert_passed(results, "chunks aiming 1 cm below the floor are moved onto it", "none of them rejected",
                  "TCP stays above the workspace floor (aiming 1 cm below)")


def test_overlapping_chunks_keep_the_commanded_velocity_continuous(results):
    assert_passed(results, "velocity continuity across chunk splices")


def test_silence_halts_the_arm_and_holds(results):
    assert_passed(results, "at rest 3.8 s into chunk silence", "silence halt reported")


def test_estop_while_moving_halts_holds_and_resets(results):
    assert_passed(results, "at rest 0.3 s after an e-stop while moving", "chunks rejected while e-stopped",
                  "moves again after /controller/reset")


def test_gripper_targets_flipping_mid_move_do_not_stall_the_state_stream(results):
    assert_passed(results, "/ee_pose keeps flowing while gripper targets flip", "fingers follow the gripper chunks")


def test_controller_survived_everything(results):
    assert_passed(results, "controller process still running")
