"""The command core with the real FR3 kinematics, without a robot: chunk acceptance, limits, stops.

(The loop on a simulated arm: tests/control; the whole node against the sim world: tests/integration.)
"""

import numpy as np
import pytest

from video_policy_ros.config import ControllerConfig, WorkspaceConfig
from video_policy_ros.control.build import WorkspaceUnreachable, build_commander, check_workspace_reachable
from video_policy_ros.control.kinematics import HOME_JOINTS, FR3Kinematics
from video_policy_ros.control.watchdog import ChunkRejected
from video_policy_ros.types import ActionChunk, ArmState

KINEMATICS = FR3Kinematics()
HOME_POSE = KINEMATICS.tcp_pose(HOME_JOINTS)
CONFIG = ControllerConfig()


def state(joints=HOME_JOINTS, joint_speed=0.0, stamp=0.0):
    return ArmState(stamp, np.array(joints, float), np.full(7, joint_speed), KINEMATICS.tcp_pose(joints), 0.04)


def chunk_towards(target, stamp=0.0, n=10, dt=0.1, start=HOME_POSE):
    s = np.linspace(1 / n, 1, n)[:, None]
    positions = start[:3] + s * (np.asarray(target) - start[:3])
    return ActionChunk(stamp, dt, np.hstack([positions, np.tile(start[3:], (n, 1))]), np.full(n, 0.02))


@pytest.fixture
def commander():
    return build_commander(CONFIG, KINEMATICS)


def rejection(commander, chunk, now=0.0):
    with pytest.raises(ChunkRejected) as info:
        commander.accept_chunk(chunk, now, state())
    return info.value.reason


def test_a_valid_chunk_is_accepted_and_counted(commander):
    commander.accept_chunk(chunk_towards(HOME_POSE[:3] - [0.1, 0, 0.1]), 0.0, state())
    assert commander.active and commander.watchdog.counters["chunks_accepted"] == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_chunks_are_rejected_and_the_old_plan_kept(commander, bad):
    commander.accept_chunk(chunk_towards(HOME_POSE[:3] - [0.1, 0, 0.1]), 0.0, state())
    poisoned = chunk_towards(HOME_POSE[:3] - [0.1, 0, 0.1])
    poisoned.poses[3, 1] = bad
    assert rejection(commander, poisoned, 0.1) == "non_finite"
    assert commander.active and np.linalg.norm(commander.command(0.2, state(), 0.005).twist) > 0


def test_each_bad_chunk_is_rejected_for_its_reason(commander):
    assert rejection(commander, chunk_towards(HOME_POSE[:3] + [0, 0, 0.3])) == "outside_workspace"
    jump = chunk_towards(HOME_POSE[:3] + [-0.2, 0.2, -0.25], n=1, dt=0.1)  # 0.38 m in 0.1 s
    assert rejection(commander, jump) == "start_jump"
    assert rejection(commander, chunk_towards(HOME_POSE[:3], stamp=-5.0)) == "too_old"
    assert rejection(commander, chunk_towards(HOME_POSE[:3], stamp=5.0)) == "future_stamp"
    tilted = chunk_towards(HOME_POSE[:3])
    tilted.poses[:, 3:] = [np.sin(0.3), 0, 0, np.cos(0.3)]  # 0.6 rad from straight down
    assert rejection(commander, tilted) == "tilt"
    assert rejection(commander, chunk_towards(HOME_POSE[:3], stamp=-1.5, n=10), now=0.0) == "stale"
    counters = commander.watchdog.counters
    assert counters["chunks_rejected"] == 6 and counters["chunks_accepted"] == 0
    assert all(counters[f"rejected_{r}"] == 1 for r in ("outside_workspace", "start_jump", "too_old", "future_stamp", "tilt", "stale"))


def test_points_just_outside_the_workspace_are_moved_onto_it_and_counted(commander):
    """A policy aiming 8 mm below the floor gets the floor; 2.5 cm below (past workspace_tolerance_m) the
    whole chunk is refused, as is every point outside with a tolerance of 0."""
    floor = CONFIG.workspace.min[2]
    low = [*(np.array(CONFIG.workspace.min[:2]) + CONFIG.workspace.max[:2]) / 2, floor - 0.008]
    admitted = commander.watchdog.admit_chunk(chunk_towards(low), 0.0, commander.setpoint(0.0, state()))
    assert admitted.poses[:, 2].min() == pytest.approx(floor) and admitted.poses[-1, :2] == pytest.approx(low[:2])
    assert commander.watchdog.counters["limited_workspace_projection"] == 1
    assert rejection(commander, chunk_towards([*low[:2], floor - 0.025])) == "outside_workspace"
    strict = build_commander(CONFIG.model_copy(update={"workspace_tolerance_m": 0.0}), KINEMATICS)
    assert rejection(strict, chunk_towards([*low[:2], floor - 0.003])) == "outside_workspace"


def test_gripper_targets_are_clamped_to_the_hand_range(commander):
    chunk = chunk_towards(HOME_POSE[:3])
    chunk.gripper[:] = 0.5
    commander.accept_chunk(chunk, 0.0, state())
    assert commander.command(0.5, state(), 0.005).gripper == pytest.approx(0.04)


def test_speed_is_capped_and_only_scaled_down(commander):
    watchdog, previous = commander.watchdog, commander.last_sent
    accel = np.zeros(7)
    fast = np.array([-2.0, 1.0, 0, 0, 0, 0])  # into the box: home lies 2.6 cm from its x_max face
    for _ in range(400):  # long enough to ramp up through the acceleration limits
        previous, accel = watchdog.limit(fast, state(), previous, accel, 0.005)
    speed = np.linalg.norm(previous.twist[:3])
    assert CONFIG.max_linear_speed * 0.97 < speed <= CONFIG.max_linear_speed + 1e-9  # damped inverse: a hair below
    direction = previous.twist[:3] / np.linalg.norm(previous.twist[:3])
    np.testing.assert_allclose(direction, fast[:3] / np.linalg.norm(fast[:3]), atol=0.02)  # stays on its line
    slow = np.array([0.01, 0, 0, 0, 0, 0])
    for _ in range(400):
        previous, accel = watchdog.limit(slow, state(), previous, accel, 0.005)
    np.testing.assert_allclose(previous.twist, slow, atol=1e-4)


def test_acceleration_per_cycle_is_bounded(commander):
    command, _ = commander.watchdog.limit(np.array([0.25, 0, 0, 0, 0, 0]), state(), commander.last_sent, np.zeros(7), 0.005)
    assert np.linalg.norm(command.twist[:3]) <= CONFIG.max_linear_acceleration * 0.005 * 1.05


def test_no_descent_through_the_workspace_floor_or_the_table_but_back_up_is_free():
    low = KINEMATICS.solve_ik(np.concatenate([[0.45, 0.0, 0.012], HOME_POSE[3:]])).joints  # below the floor (0.02)
    commander = build_commander(CONFIG, KINEMATICS)
    previous, accel = commander.last_sent, np.zeros(7)
    for _ in range(100):
        previous, accel = commander.watchdog.limit(np.array([0, 0, -0.2, 0, 0, 0]), state(low), previous, accel, 0.005)
    assert previous.twist[2] > -0.01
    assert commander.watchdog.counters["limited_workspace"] > 0
    for _ in range(100):
        previous, accel = commander.watchdog.limit(np.array([0, 0, 0.1, 0, 0, 0]), state(low), previous, accel, 0.005)
    np.testing.assert_allclose(previous.twist[:3], [0, 0, 0.1], atol=1e-3)


def test_approach_to_a_workspace_face_slows_so_the_arm_can_brake_before_it():
    commander = build_commander(CONFIG, KINEMATICS)
    watchdog = commander.watchdog
    for room, fast_enough in ((0.10, True), (0.01, False), (0.0, False)):
        pose = np.concatenate([[CONFIG.workspace.max[0] - room, 0.0, 0.3], HOME_POSE[3:]])
        joints = KINEMATICS.solve_ik(pose).joints
        previous, accel = commander.last_sent, np.zeros(7)
        for _ in range(200):
            previous, accel = watchdog.limit(np.array([0.25, 0, 0, 0, 0, 0]), state(joints), previous, accel, 0.005)
        braking = previous.twist[0] ** 2 / (2 * CONFIG.max_linear_acceleration)
        assert braking <= room + 1e-6  # it could still stop at the full cap before the face
        assert bool(previous.twist[0] > 0.2) is fast_enough, (room, previous.twist)


def test_stop_latches_until_reset_at_rest(commander):
    commander.accept_chunk(chunk_towards(HOME_POSE[:3] - [0.1, 0, 0.1]), 0.0, state())
    assert commander.watchdog.latch("estop", "/controller/estop") is True
    assert commander.watchdog.latch("reflex", "second") is False  # the first reason is kept
    assert commander.command(0.1, state(), 0.005).halt
    assert rejection(commander, chunk_towards(HOME_POSE[:3]), 0.1) == "stopped"
    ok, message = commander.watchdog.reset(state(joint_speed=0.2))
    assert not ok and "moving" in message
    ok, message = commander.watchdog.reset(state())
    assert ok and "estop" in message
    hold = commander.command(0.2, state(), 0.005)
    assert not hold.halt and not commander.active and np.all(hold.twist == 0)  # no stale plan resumes


def test_robot_errors_recover_automatically_within_the_allow_list_and_attempts(commander):
    watchdog = commander.watchdog
    watchdog.latch("motion_planner", "Motion planner failed with error code -110", robot_error=True)
    assert not watchdog.should_recover(state(joint_speed=0.5), now=0.0)  # only at rest
    for attempt in range(CONFIG.max_recovery_attempts):
        assert watchdog.should_recover(state(), now=attempt)
        watchdog.recovery_result(False, now=attempt)
    assert not watchdog.should_recover(state(), now=5.0)
    assert "did not help" in watchdog.stop_message
    assert watchdog.should_recover(state(), now=100.0)  # attempts are counted per time window
    watchdog.reset(state())
    watchdog.latch("internal", "a bug in the control cycle", robot_error=True)
    assert not watchdog.should_recover(state(), now=200.0)  # not on the allow-list
    watchdog.reset(state())
    watchdog.latch("reflex", "Motion aborted by reflex", robot_error=True)
    assert watchdog.should_recover(state(), now=300.0)
    watchdog.recovery_result(True, now=300.0)
    assert watchdog.stop_message is None and watchdog.counters["recoveries"] == 1


def test_a_workspace_the_arm_cannot_reach_is_refused_at_start_up():
    too_far = ControllerConfig(workspace=WorkspaceConfig(min=(0.25, -0.45, 0.02), max=(0.80, 0.45, 0.70)))  # the old box
    with pytest.raises(WorkspaceUnreachable, match="workspace: the TCP at .* shrink workspace.min/max"):
        check_workspace_reachable(KINEMATICS, too_far)
    check_workspace_reachable(KINEMATICS, CONFIG)  # the default box is reachable with the default tilt


def test_a_chunk_faster_than_the_cap_is_slowed_down_along_its_path(commander):
    target = HOME_POSE[:3] + [-0.15, 0.1, -0.2]
    commander.accept_chunk(chunk_towards(target, n=5, dt=0.1), 0.0, state())  # 0.27 m in 0.5 s: twice the cap
    positions = []
    for k in range(1, 300):
        commander.command(k * 0.005, state(), 0.005)  # the arm does not move: only the set-point is checked
        positions.append(commander.setpoint(k * 0.005, state()).pose[:3])
    speeds = np.linalg.norm(np.diff(positions, axis=0), axis=1) / 0.005
    assert speeds.max() <= CONFIG.max_linear_speed * 1.01
    np.testing.assert_allclose(positions[-1], target, atol=1e-3)  # still gets there, later (1.1 s, not 0.5 s)


def guarded(action: str, threshold: float = 0.05, predictions: int = 2):
    return build_commander(ControllerConfig(divergence={"threshold": threshold, "predictions": predictions,
                                                       "action": action, "slow_factor": 0.5}), KINEMATICS)


def test_the_divergence_guard_is_off_by_default(commander):
    for _ in range(10):
        assert commander.watchdog.divergence(1.0) is None
    assert commander.watchdog.speed_scale == 1.0 and commander.watchdog.stop_message is None
    assert commander.watchdog.last_divergence == 1.0


def test_diverged_predictions_in_a_row_slow_the_arm_and_one_that_matches_restores_its_speed():
    commander = guarded("slow")
    watchdog = commander.watchdog
    assert watchdog.divergence(0.2) is None and watchdog.divergence(0.01) is None  # not in a row
    assert watchdog.divergence(0.2) is None
    message = watchdog.divergence(float("nan"))  # an unusable prediction counts as diverged
    assert "for 2 predictions in a row" in message and "x0.5" in message
    assert watchdog.linear_cap == pytest.approx(CONFIG.max_linear_speed / 2) and watchdog.divergence(0.3) is None
    previous, accel = commander.last_sent, np.zeros(7)
    fast = np.array([-2.0, 1.0, 0, 0, 0, 0])
    for _ in range(400):
        previous, accel = watchdog.limit(fast, state(), previous, accel, 0.005)
    assert np.linalg.norm(previous.twist[:3]) <= CONFIG.max_linear_speed / 2 + 1e-9
    assert watchdog.divergence(0.01) is None and watchdog.speed_scale == 1.0
    assert watchdog.counters["divergence_slowdowns"] == 1 and watchdog.counters["divergence_cleared"] == 1


def test_slowing_down_while_moving_decelerates_within_the_acceleration_cap():
    commander = guarded("slow")
    watchdog, previous, accel = commander.watchdog, commander.last_sent, np.zeros(7)
    fast = np.array([-2.0, 1.0, 0, 0, 0, 0])
    for _ in range(400):
        previous, accel = watchdog.limit(fast, state(), previous, accel, 0.005)
    watchdog.divergence(0.2)
    watchdog.divergence(0.2)
    speeds = [np.linalg.norm(previous.twist[:3])]
    for _ in range(100):
        previous, accel = watchdog.limit(fast, state(), previous, accel, 0.005)
        speeds.append(np.linalg.norm(previous.twist[:3]))
    assert speeds[0] > CONFIG.max_linear_speed * 0.9 and speeds[-1] <= CONFIG.max_linear_speed / 2 + 1e-9
    assert np.max(-np.diff(speeds)) <= CONFIG.max_linear_acceleration * 0.005 * 1.05  # no step down


def test_the_halt_action_latches_a_stop_that_reset_clears_at_rest():
    commander = guarded("halt", predictions=3)
    watchdog = commander.watchdog
    assert [watchdog.divergence(0.5) for _ in range(2)] == [None, None]
    assert "3 predictions in a row" in watchdog.divergence(0.5)
    assert watchdog.stop_message.startswith("divergence 0.5 above 0.05")
    assert watchdog.counters["stops_divergence"] == 1
    assert watchdog.reset(state()) == (True, f"cleared stop ({watchdog.last_stop}); holding position until the next chunk")
