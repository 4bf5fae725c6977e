"""The controller process against the sim world process, driven from this test process only
through the topic contract, with nothing else publishing chunks (issue 11's acceptance).

One sim world + controller for the module; the scenarios run in sequence and record what
/ee_pose, /joint_states, /controller/command and /diagnostics showed. The controller is
started before the sim world, as launch may do: it must wait for the robot and connect.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import yaml
from std_msgs.msg import Bool
from trajectory_msgs.msg import MultiDOFJointTrajectory, MultiDOFJointTrajectoryPoint

from tests.control.workspace_targets import face_targets
from tests.integration.controller_observer import Driver, Observer, observer_node, wait_for
from tests.integration.processes import node_process, print_logs, robot_ip_for_this_process, stop
from video_policy_ros.config import ControllerConfig
from video_policy_ros.types import ActionChunk

pytestmark = pytest.mark.integration
CONFIG = ControllerConfig()
CAP = CONFIG.max_linear_speed
FACES = face_targets(CONFIG.workspace, inset=0.005)  # the sim arm overshoots a target by up to ~3 mm


def seed_clear_of(target, radius: float = 0.15) -> int:
    """A scene seed with no cube or bowl within ``radius`` (xy) of the only low target: the arm tests
    the controller here, the objects would only be obstacles."""
    from video_policy_ros.config import TaskConfig
    from video_policy_ros.sim.scene import sample_layout

    for seed in range(1000):
        layout = sample_layout(seed, TaskConfig())
        objects = [*layout.cube_positions.values(), layout.bowl_position]
        if all(np.linalg.norm(p[:2] - np.asarray(target)[:2]) > radius for p in objects):
            return seed
    raise AssertionError(f"no scene seed leaves {target} clear")


def bad_chunks(driver: Driver) -> dict[str, object]:
    here = driver.obs.pose_now()
    nan = driver.line(here[:3] + [0.02, 0, 0], speed=0.1)
    nan.poses[1, 0] = np.nan
    malformed = MultiDOFJointTrajectory(joint_names=["not_the_tcp"], points=[MultiDOFJointTrajectoryPoint()])
    return {
        "non_finite": nan,
        "outside_workspace": driver.line([0.45, 0.0, 2.0], speed=0.1),  # 2 m above the table
        "start_jump": ActionChunk(time.time() + 0.3, 0.1,  # 0.38 m away, inside the box
                                  np.tile(np.concatenate([here[:3] + [-0.2, 0.2, -0.25], here[3:]]), (10, 1)), np.full(10, 0.04)),
        "too_old": driver.line(here[:3] + [0.02, 0, 0], speed=0.1, stamp=time.time() - 5.0),
        "future_stamp": driver.line(here[:3] + [0.02, 0, 0], speed=0.1, stamp=time.time() + 5.0),
        "malformed": malformed,
    }


def run_scenarios(driver: Driver, obs: Observer) -> None:
    ev = obs.events
    # Bad chunks: each rejected, the arm stays put.
    ev["bad_start"] = time.time()
    for reason, chunk in bad_chunks(driver).items():
        if isinstance(chunk, ActionChunk):
            driver.send(chunk)
        else:
            driver.chunks.publish(chunk)
        time.sleep(0.4)
    time.sleep(1.0)
    ev["bad_end"] = time.time()
    # Speed cap: one chunk per workspace face, asking for twice the cap.
    ev["faces"] = {}
    for face, target in FACES.items():
        start = obs.pose_now()[:3].copy()
        ev["faces"][face] = (start, np.array(target), *driver.go(np.array(target), speed=2 * CAP))
    # A policy's re-planning: every 0.5 s a chunk at the cap from the measured pose (which lags the
    # set-point) to a point 1 mm above the workspace floor, each ending in an abrupt stop.
    floor = FACES["z_min"].copy()
    floor[2] = CONFIG.workspace.min[2] + 0.001
    # At least 8 such stops, and on until the TCP is at the floor: a loaded machine slows the simulated arm.
    ev["floor_start"] = time.time()
    for i in range(60):
        if i >= 8 and obs.pose_now()[2] < floor[2] + 0.004:
            break
        driver.send(driver.line(floor, speed=CAP))
        time.sleep(0.5)
    time.sleep(1.0)
    ev["floor_end"] = time.time()
    # Overlapping chunks: a new one every 0.3 s, each turning the motion.
    ev["splice_start"] = time.time()
    for target in [(0.45, 0.1, 0.25), (0.40, -0.1, 0.35), (0.50, 0.0, 0.20), (0.45, 0.15, 0.30)]:
        driver.send(driver.line(target, speed=0.2))
        time.sleep(0.3)
    time.sleep(2.0)
    ev["splice_end"] = time.time()
    # Silence: one long, slow chunk, then nothing.
    chunk = driver.line((0.33, 0.0, 0.45), speed=0.03)
    ev["silence_chunk_s"] = len(chunk) * chunk.dt
    ev["silence_sent"] = time.time()
    driver.send(chunk)
    time.sleep(CONFIG.max_chunk_silence_s + 1.5)
    ev["silence_end"] = time.time()
    # E-stop while moving, chunks keep coming, reset, moves again.
    driver.send(driver.line((0.55, 0.1, 0.2), speed=0.2))
    time.sleep(0.6)
    ev["estop"] = time.time()
    driver.estop_pub.publish(Bool(data=True))
    for _ in range(5):
        time.sleep(0.3)
        driver.send(driver.line((0.55, 0.1, 0.2), speed=0.2))
    ev["reset"] = time.time()
    ev["reset_response"] = driver.reset()
    driver.send(driver.line((0.45, -0.1, 0.3), speed=0.2))
    time.sleep(1.5)
    ev["done"] = time.time()
    # Gripper targets flipping while the fingers still move (a policy unsure whether to grasp).
    ev["gripper_start"] = time.time()
    for i in range(12):
        here = obs.pose_now()
        poses = np.tile(np.concatenate([here[:3] + [0.0, 0.004 * (-1) ** i, 0.0], here[3:]]), (10, 1))
        driver.send(ActionChunk(time.time(), 0.1, poses, np.full(10, 0.0 if i % 2 == 0 else 0.04)))
        time.sleep(0.25)
    time.sleep(1.0)
    ev["gripper_end"] = time.time()


@pytest.fixture(scope="module")
def observed(tmp_path_factory) -> Observer:
    tmp = tmp_path_factory.mktemp("controller_faults")
    ip = robot_ip_for_this_process()
    sim_config = tmp / "sim_world.yaml"  # one tiny camera: the sim world is the robot here, not the eyes
    sim_config.write_text(yaml.safe_dump({"cameras": [{"name": "front", "width": 32, "height": 24, "fps": 1.0}],
                                          "seed": seed_clear_of(FACES["z_min"])}))
    controller = node_process("controller", {"robot_ip": ip}, tmp / "controller.log")
    sim = None
    try:
        with observer_node("controller_fault_injector") as (obs, driver):
            wait_for(lambda: any("waiting for the robot at" in m for _, m, _ in obs.diagnostics), 30, "'waiting for the robot'")
            sim = node_process("sim_world", {"robot_ip": ip, "config_file": sim_config, "output_dir": tmp}, tmp / "sim.log")
            wait_for(lambda: len(obs.poses) > 50, 60, "/ee_pose once the sim world is up")
            run_scenarios(driver, obs)
            obs.events["controller_alive"] = controller.poll() is None
    finally:
        for process in (controller, sim):
            if process is not None:
                stop(process)
        print_logs(tmp, ("controller", "sim"))
    return obs


def test_bad_chunks_are_rejected_reported_and_do_not_move_the_arm(observed):
    ev = observed.events
    _, positions = observed.poses_between(ev["bad_start"], ev["bad_end"])
    moved = np.linalg.norm(positions - positions[0], axis=1).max()
    print(f"largest TCP displacement during the bad chunks: {moved * 100:.2f} cm")
    assert moved < 0.02
    for reason in ("non_finite", "outside_workspace", "start_jump", "too_old", "future_stamp", "malformed"):
        assert observed.counter(f"rejected_{reason}") >= 1, f"no rejected_{reason} on /diagnostics"
    assert observed.counter("chunks_rejected") >= 6


def test_speed_cap_and_straight_line_to_every_face(observed):
    print("face: max TCP speed over 0.05 s of /ee_pose stamps (m/s), max distance from the commanded line (m)")
    results = {}
    for face, (start, target, sent, arrived) in observed.events["faces"].items():
        stamps, positions = observed.poses_between(sent, arrived)
        later = np.searchsorted(stamps, stamps + 0.05)
        valid = later < len(stamps)
        i, j = np.nonzero(valid)[0], later[valid]
        speeds = np.linalg.norm(positions[j] - positions[i], axis=1) / (stamps[j] - stamps[i])
        direction = (target - start) / np.linalg.norm(target - start)
        offsets = positions - start
        off_line = np.linalg.norm(offsets - np.outer(offsets @ direction, direction), axis=1)
        results[face] = (speeds.max(), off_line.max())
        print(f"  {face:32s} {speeds.max():.3f} {off_line.max():.4f}")
    for face, (speed, off) in results.items():
        assert speed <= CAP * 1.04, f"{face}: {speed:.3f} m/s over the {CAP} m/s cap"
        assert off <= 0.01, f"{face}: TCP left the commanded line by {off:.3f} m"


def test_the_measured_tcp_stays_in_the_workspace_box_when_chunks_stop_abruptly_at_its_floor(observed):
    """Chunks only hold points inside the box; the arm's own dynamics (a stop from speed, the lag of the
    measured pose behind the set-point) once carried the TCP 1-2 cm past such a stop."""
    _, positions = observed.poses_between(observed.events["floor_start"], observed.events["floor_end"])
    lowest = positions[:, 2].min()
    print(f"lowest TCP z {lowest:.4f} m, workspace floor {CONFIG.workspace.min[2]} m")
    assert lowest >= CONFIG.workspace.min[2] - 0.0015
    assert lowest <= CONFIG.workspace.min[2] + 0.005  # it did get there


def test_overlapping_chunks_keep_the_commanded_velocity_continuous(observed):
    ev = observed.events
    kept = [(s, v) for s, v in observed.commands if ev["splice_start"] <= s <= ev["splice_end"]]
    stamps, twists = np.array([s for s, _ in kept]), np.array([v for _, v in kept])
    change = np.linalg.norm(np.diff(twists, axis=0), axis=1)
    # Per published cycle; a cycle that ran late may legitimately change more, in proportion.
    allowed = CONFIG.max_linear_acceleration * np.maximum(np.diff(stamps), 1.0 / CONFIG.loop_rate_hz)
    print(f"max per-cycle change of /controller/command: {change.max():.5f} m/s; max ratio to a*dt {np.max(change / allowed):.3f}")
    assert np.linalg.norm(twists, axis=1).max() > 0.1, "the splices must happen while moving"
    assert np.all(change <= allowed * 1.05 + 1e-6)


def test_silence_halts_the_arm_and_holds(observed):
    ev = observed.events
    assert ev["silence_chunk_s"] > CONFIG.max_chunk_silence_s + 1.0
    halted_by = ev["silence_sent"] + CONFIG.max_chunk_silence_s + 0.3
    assert observed.max_joint_speed(ev["silence_sent"] + 1.0, ev["silence_sent"] + 2.5) > 0.005, "must be moving first"
    residual = observed.max_joint_speed(halted_by, ev["silence_end"])
    print(f"max joint speed from max_chunk_silence_s + 0.3 s on: {residual:.4f} rad/s")
    assert residual < 0.01
    assert observed.counter("silence_halts") >= 1


def test_estop_while_moving_halts_holds_and_resets(observed):
    ev = observed.events
    assert observed.max_joint_speed(ev["estop"] - 0.1, ev["estop"]) > 0.05, "the arm was not moving at the e-stop"
    residual = observed.max_joint_speed(ev["estop"] + 0.3, ev["reset"])
    print(f"max joint speed from 0.3 s after the e-stop until reset: {residual:.4f} rad/s")
    assert residual < 0.01
    assert ev["reset_response"].success, ev["reset_response"].message
    assert observed.max_joint_speed(ev["reset"], ev["done"]) > 0.05, "did not move again after the reset"
    assert observed.counter("rejected_stopped") >= 1  # the chunks sent during the stop


def test_gripper_targets_flipping_mid_move_do_not_stall_the_state_stream(observed):
    ev = observed.events
    received = np.array([r for r, _, _ in observed.poses if ev["gripper_start"] <= r <= ev["gripper_end"]])
    fingers = np.array([f for r, f in observed.fingers if ev["gripper_start"] <= r <= ev["gripper_end"]])
    longest_gap = np.diff(received).max()
    print(f"longest /ee_pose gap while the gripper flipped: {longest_gap * 1000:.0f} ms; "
          f"fingers between {fingers.min() * 1000:.1f} and {fingers.max() * 1000:.1f} mm")
    assert longest_gap < 0.3, "gripper I/O held up the control loop"
    assert fingers.max() - fingers.min() > 0.01, "the fingers must have followed the gripper chunks"


def test_controller_survived_everything(observed):
    assert observed.events["controller_alive"]
