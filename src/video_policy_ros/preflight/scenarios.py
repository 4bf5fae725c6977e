"""What preflight does to the stack: the user's controller (and inference) configuration runs as
real node processes against a private sim twin, and is driven and watched through the topic
contract only, as ``scripts/`` nodes under ``ros2 launch`` would be.

Three sessions, each with processes of its own:
- ``controller``: the sim world + the controller; bad chunks, the speed at each workspace face,
  abrupt stops at the floor, overlapping chunks, chunk silence, the e-stop, gripper flips;
- ``robot_errors``: an FR3 that faults like a real one (``sim/faulty_fr3.py``) + the controller;
- ``inference``: the sim world + the controller + the inference node, which is SIGKILLed mid-chunk.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from video_policy_ros.config import ControllerConfig, PreflightConfig, TaskConfig
from video_policy_ros.nodes.contract_probe import Driver, observer_node
from video_policy_ros.preflight import checks
from video_policy_ros.preflight.observations import Observations, wait_for
from video_policy_ros.preflight.processes import node_process, robot_ip_for_this_process, start_module, stop
from video_policy_ros.preflight.targets import face_targets
from video_policy_ros.sim.scene import sample_layout
from video_policy_ros.types import ActionChunk


@dataclass(frozen=True)
class Setup:
    """The configuration under test and where the sessions keep their logs."""

    controller_file: Path
    inference_file: Path
    sim_world_file: Path
    controller: ControllerConfig
    site: PreflightConfig
    work_dir: Path


@dataclass(frozen=True)
class Step:
    """One part of a session: what it does to the stack, and the checks it feeds."""

    session: str
    act: Callable[[Driver, Observations, Setup], None]
    evaluate: Callable[[Observations, Setup], list[checks.Check]]
    description: str


# --------------------------------------------------------------------------- the controller session


def _bad_chunks(driver: Driver, obs: Observations, setup: Setup) -> None:
    here = obs.pose_now()
    nan = driver.line(here[:3] + [0.02, 0, 0], speed=0.1)
    nan.poses[1, 0] = np.nan
    above = np.array(setup.controller.workspace.max) + [0.0, 0.0, 1.0]
    chunks = {
        "non_finite": nan,
        "outside_workspace": driver.line(above, speed=0.1),
        "start_jump": ActionChunk(time.time() + 0.3, 0.1,  # far from the set-point, inside the box
                                  np.tile(np.concatenate([_far_point(setup.controller, here[:3]), here[3:]]), (10, 1)),
                                  np.full(10, 0.04)),
        "too_old": driver.line(here[:3] + [0.02, 0, 0], speed=0.1, stamp=time.time() - 5.0 - setup.controller.max_chunk_age_s),
        "future_stamp": driver.line(here[:3] + [0.02, 0, 0], speed=0.1,
                                    stamp=time.time() + 5.0 + setup.controller.max_future_stamp_s),
        "malformed": None,  # a message no chunk converts from
    }
    obs.events["bad_start"] = time.time()
    for chunk in chunks.values():
        if chunk is None:
            driver.send_malformed()
        else:
            driver.send(chunk)
        time.sleep(0.4)
    time.sleep(1.0)
    obs.events["bad_end"] = time.time()


def _far_point(controller: ControllerConfig, here: np.ndarray) -> np.ndarray:
    """The workspace corner furthest from ``here``: a start jump whatever the configured limit."""
    corners = np.array([[x, y, z] for x in (controller.workspace.min[0], controller.workspace.max[0])
                        for y in (controller.workspace.min[1], controller.workspace.max[1])
                        for z in (controller.workspace.min[2], controller.workspace.max[2])])
    return corners[np.argmax(np.linalg.norm(corners - here, axis=1))]


def _faces(driver: Driver, obs: Observations, setup: Setup) -> None:
    cap = setup.controller.max_linear_speed
    obs.events["faces"] = {}
    for face, target in face_targets(setup.controller.workspace, inset=0.005).items():  # the sim arm overshoots by ~3 mm
        start = obs.pose_now()[:3].copy()
        obs.events["faces"][face] = (start, target, *driver.go(target, speed=2 * cap))


def _floor(driver: Driver, obs: Observations, setup: Setup) -> None:
    """A policy's re-planning: every 0.5 s a chunk at the cap from the measured pose (which lags the
    set-point) to 1 mm above the workspace floor, each ending in an abrupt stop."""
    _chunks_to_the_floor(driver, obs, setup, "floor", 0.001)


def _below_floor(driver: Driver, obs: Observations, setup: Setup) -> None:
    """The same re-planning toward a point half the workspace tolerance below the floor (a policy that
    aims a little too low): the controller moves those points onto the floor instead of refusing them."""
    obs.events["projected_before"] = obs.counter("limited_workspace_projection")
    obs.events["outside_before"] = obs.counter("rejected_outside_workspace")
    _chunks_to_the_floor(driver, obs, setup, "below_floor", -setup.controller.workspace_tolerance_m / 2)
    obs.events["projected_after"] = obs.counter("limited_workspace_projection")
    obs.events["outside_after"] = obs.counter("rejected_outside_workspace")


def _chunks_to_the_floor(driver: Driver, obs: Observations, setup: Setup, key: str, height: float) -> None:
    """Chunks every 0.5 s to ``height`` above the middle of the workspace floor; ``{key}_start/_end`` events."""
    workspace = setup.controller.workspace
    floor_point = (np.array(workspace.min) + workspace.max) / 2
    floor_point[2] = workspace.min[2] + height
    reached = workspace.min[2] + max(height, 0.0) + 0.004
    obs.events[f"{key}_start"] = time.time()
    # At least 8 such stops, and on until the TCP is at the floor (a loaded machine slows the simulated
    # arm), or stopped short of it (a floor the arm cannot reach).
    last_z = []
    for i in range(60):
        last_z.append(obs.pose_now()[2])
        if i >= 8 and (last_z[-1] < reached or max(last_z[-4:]) - min(last_z[-4:]) < 0.0005):
            break
        driver.send(driver.line(floor_point, speed=setup.controller.max_linear_speed))
        time.sleep(0.5)
    time.sleep(1.0)
    obs.events[f"{key}_end"] = time.time()
    driver.go((np.array(workspace.min) + workspace.max) / 2, speed=0.1)  # back to the middle for what follows


def _splices(driver: Driver, obs: Observations, setup: Setup) -> None:
    """Overlapping chunks: a new one every 0.3 s, each turning the motion."""
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    obs.events["splice_start"] = time.time()
    for fraction in [(0.5, 0.8, 0.5), (0.3, 0.2, 0.7), (0.7, 0.5, 0.4), (0.5, 0.9, 0.6)]:
        driver.send(driver.line(lo + np.array(fraction) * (hi - lo), speed=min(0.2, setup.controller.max_linear_speed)))
        time.sleep(0.3)
    time.sleep(2.0)
    obs.events["splice_end"] = time.time()


def _silence(driver: Driver, obs: Observations, setup: Setup) -> None:
    """One long, slow chunk, then nothing."""
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    target = lo + np.array([0.05, 0.5, 0.9]) * (hi - lo)
    speed = max(0.01, float(np.linalg.norm(target - obs.pose_now()[:3])) / (setup.controller.max_chunk_silence_s + 3.0))
    chunk = driver.line(target, speed=speed)
    sent = obs.events["silence_sent"] = time.time()
    driver.send(chunk)
    # the silence limit (wall clock), then 1.5 s of the robot's clock for the braking and the hold
    wait_for(lambda: time.time() > obs.after_robot_seconds(sent + setup.controller.max_chunk_silence_s, 1.5), 60,
             "the silence halt")
    obs.events["silence_end"] = time.time()


def _estop(driver: Driver, obs: Observations, setup: Setup) -> None:
    """E-stop while moving, chunks keep coming, reset, moves again."""
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    target = lo + np.array([0.9, 0.7, 0.3]) * (hi - lo)
    speed = min(0.2, setup.controller.max_linear_speed)
    driver.send(driver.line(target, speed=speed))
    time.sleep(0.6)
    estop = obs.events["estop"] = time.time()
    driver.estop()
    while time.time() < obs.after_robot_seconds(estop, 1.5):  # 1.5 s of the robot's clock with chunks coming
        time.sleep(0.3)
        driver.send(driver.line(target, speed=speed))
    obs.events["reset"] = time.time()
    obs.events["reset_response"] = driver.reset()
    driver.send(driver.line(lo + np.array([0.5, 0.3, 0.6]) * (hi - lo), speed=speed))
    time.sleep(1.5)
    obs.events["done"] = time.time()


def _gripper(driver: Driver, obs: Observations, setup: Setup) -> None:
    """Gripper targets flipping while the fingers still move (a policy unsure whether to grasp)."""
    obs.events["gripper_start"] = time.time()
    for i in range(12):
        here = obs.pose_now()
        poses = np.tile(np.concatenate([here[:3] + [0.0, 0.004 * (-1) ** i, 0.0], here[3:]]), (10, 1))
        driver.send(ActionChunk(time.time(), 0.1, poses, np.full(10, 0.0 if i % 2 == 0 else 0.04)))
        time.sleep(0.25)
    time.sleep(1.0)
    obs.events["gripper_end"] = time.time()


def _while_running(process: subprocess.Popen, log: Path, predicate, timeout: float, what: str) -> None:
    """``wait_for``, but a process that exits meanwhile ends the wait with its own error line."""
    wait_for(lambda: predicate() or process.poll() is not None, timeout, what)
    if process.poll() is not None:
        errors = [line for line in log.read_text().splitlines() if "error" in line.lower()] if log.exists() else []
        raise RuntimeError(f"{log.stem} exited with code {process.returncode}: {errors[-1] if errors else 'no error line'}")


def _enter_workspace(driver: Driver, obs: Observations, setup: Setup) -> None:
    """Bring the TCP from wherever the robot started into the workspace box (a chunk whose points all
    lie in it, from the nearest point of the box), so the steps start inside it."""
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    here = obs.pose_now()[:3]
    if np.all(here >= lo + 0.005) and np.all(here <= hi - 0.005):
        return
    entry = np.clip(here, lo + 0.005, hi - 0.005)
    target = np.clip((lo + hi) / 2, entry - 0.15, entry + 0.15)
    driver.send(driver.line(target, speed=min(0.1, setup.controller.max_linear_speed), start=entry))
    try:
        wait_for(lambda: np.linalg.norm(obs.pose_now()[:3] - target) < 0.004, 15, f"the TCP to enter the workspace at {target}")
    except TimeoutError as exc:
        raise RuntimeError(f"the robot's start pose {here.round(3)} lies {np.linalg.norm(entry - here):.3f} m outside "
                           f"the workspace box and a chunk could not bring it in ({obs.value('last_rejection') or exc})") from None


def _divergence_guard(driver: Driver, obs: Observations, setup: Setup) -> None:
    """A long chunk at the cap; while the arm is at speed, the guard's number of diverged predictions
    arrives on /policy/divergence. Then one that matches (slow) or /controller/reset (halt)."""
    guard = setup.controller.divergence
    if guard.threshold is None:
        return
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    start, end = lo + np.array([0.1, 0.1, 0.3]) * (hi - lo), lo + np.array([0.9, 0.9, 0.7]) * (hi - lo)
    driver.go(start, speed=min(0.2, setup.controller.max_linear_speed))
    driver.send(driver.line(end, speed=setup.controller.max_linear_speed))
    time.sleep(min(1.0, 0.4 * float(np.linalg.norm(end - start)) / setup.controller.max_linear_speed))
    obs.events["guard_triggered"] = time.time()
    for _ in range(guard.predictions):
        driver.send_divergence(max(2 * guard.threshold, 1e-3))
        time.sleep(0.05)
    time.sleep(1.5)
    obs.events["guard_end"] = time.time()
    if guard.action == "halt":
        wait_for(lambda: obs.joint_speed_now() < setup.site.at_rest_joint_speed, 10, "the arm at rest")
        obs.events["guard_reset"] = driver.reset()
    else:
        driver.send_divergence(0.0)
        wait_for(lambda: obs.value("speed_scale") == "1", 5, "full speed after a matching prediction")


def _seed_clear_of(target: np.ndarray, radius: float = 0.15) -> int:
    """A scene seed with no cube or bowl within ``radius`` (xy) of ``target``: the controller is under
    test here, and the objects would only be obstacles."""
    for seed in range(1000):
        layout = sample_layout(seed, TaskConfig())
        objects = [*layout.cube_positions.values(), layout.bowl_position]
        if all(np.linalg.norm(p[:2] - target[:2]) > radius for p in objects):
            return seed
    raise RuntimeError(f"no scene seed leaves {target} clear")


def _controller_session(setup: Setup, obs: Observations, ip: str) -> dict[str, subprocess.Popen]:
    workspace = setup.controller.workspace
    floor_centre = (np.array(workspace.min) + workspace.max) / 2
    floor_centre[2] = workspace.min[2]
    sim_file = setup.work_dir / "sim_world.yaml"  # one tiny camera: the sim world is the robot here, not the eyes
    sim_file.write_text(yaml.safe_dump({"cameras": [{"name": "front", "width": 32, "height": 24, "fps": 1.0}],
                                        "seed": _seed_clear_of(floor_centre)}))
    # Started before the sim world, as launch may do: it must wait for the robot and connect.
    controller = node_process("controller", {"config_file": setup.controller_file, "robot_ip": ip},
                              setup.work_dir / "controller.log")
    _while_running(controller, setup.work_dir / "controller.log",
                   lambda: any("waiting for the robot at" in m for _, m, _ in obs.diagnostics), 30, "'waiting for the robot'")
    sim = node_process("sim_world", {"robot_ip": ip, "config_file": sim_file, "output_dir": setup.work_dir},
                       setup.work_dir / "sim_world.log")
    return {"controller": controller, "sim_world": sim}


WALL_HEIGHT = 0.6  # the faulty FR3's virtual wall, as a fraction of the workspace's height
WALL_CLEARANCE_M = 0.05  # above the wall before the motion-generator error is injected


def _robot_errors_session(setup: Setup, obs: Observations, ip: str) -> dict[str, subprocess.Popen]:
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    wall_z = lo[2] + WALL_HEIGHT * (hi[2] - lo[2])
    robot = start_module("video_policy_ros.sim.faulty_fr3", [ip, "--wall-z", f"{wall_z:.4f}"], setup.work_dir / "robot.log")
    controller = node_process("controller", {"config_file": setup.controller_file, "robot_ip": ip},
                              setup.work_dir / "controller.log")
    return {"controller": controller, "robot": robot}


def _recover(driver: Driver, obs: Observations, setup: Setup, kind: str, error_kind: str, count: int, reason: str,
             caused_at: Callable[[], float | None]) -> None:
    """Wait for the ``count``-th stop and its recovery; the recovery time runs from the fault's cause
    (``caused_at()``) to the first /diagnostics that reports the controller holding again."""
    wait_for(lambda: obs.counter("stops_reflex") >= count, 15, f"the {kind.replace('_', ' ')} to latch a stop")
    if error_kind not in setup.controller.auto_recover_errors:  # not recovered automatically: the operator resets
        wait_for(lambda: obs.joint_speed_now() < setup.site.at_rest_joint_speed, 10, "the arm at rest")
        driver.reset()

    def recovered() -> float | None:
        return next((t for t, message, values in obs.diagnostics if message == "holding"
                     and int(values.get("recoveries", 0)) + int(values.get("resets", 0)) >= count), None)

    wait_for(lambda: recovered() is not None, setup.site.recovery_timeout_s, f"the recovery from the {kind.replace('_', ' ')}")
    cause = caused_at()
    if cause is None:
        raise RuntimeError(f"the {kind.replace('_', ' ')} latched a stop, but /ee_pose never showed its cause")
    obs.events[f"{kind}_recovery_s"] = recovered() - cause
    if reason not in obs.value("last_stop"):
        raise RuntimeError(f"the controller reported '{obs.value('last_stop')}', not {reason}")
    obs.events[f"{kind}_reason"] = f"from the fault's cause to 'holding'; last_stop names {reason}"


def _robot_errors(driver: Driver, obs: Observations, setup: Setup) -> None:
    lo, hi = np.array(setup.controller.workspace.min), np.array(setup.controller.workspace.max)
    middle = (lo + hi) / 2
    speed = min(0.2, setup.controller.max_linear_speed)
    driver.go(np.array([middle[0], middle[1], hi[2] - 0.02]), speed=speed)  # above the wall (crossing it upwards is fine)
    # 1. Provoked reflex: a valid chunk runs the TCP down through the wall.
    wall_z = lo[2] + WALL_HEIGHT * (hi[2] - lo[2])
    sent = time.time()
    driver.send(driver.line([middle[0], middle[1], lo[2] + 0.3 * (hi[2] - lo[2])], speed=speed))
    _recover(driver, obs, setup, "cartesian_reflex", "reflex", 1, "cartesian_reflex",
             lambda: next((r for r, _, pose in obs.poses if r > sent and pose[2] < wall_z), None))
    # 2. Injected motion-generator error while moving up again.
    driver.send(driver.line([middle[0], lo[1] + 0.75 * (hi[1] - lo[1]), hi[2] - 0.05], speed=speed))
    # Clear of the wall first: injected while the arm was still at the wall, the error was followed by a
    # second wall reflex, so the check read the wrong stop reason (once in a fresh-clone run).
    wait_for(lambda: obs.joint_speed_now() > 0.05 and obs.pose_now()[2] > wall_z + WALL_CLEARANCE_M, 10,
             f"the arm to move up again, {WALL_CLEARANCE_M * 100:.0f} cm clear of the wall, after the reflex")
    injected = time.time()
    obs.events["processes"]["robot"].send_signal(signal.SIGUSR1)
    _recover(driver, obs, setup, "motion_generator_error", "motion_generator", 2,
             "joint_motion_generator_velocity_discontinuity", lambda: injected)
    # 3. Same node, same connection: chunks move the arm again.
    before = obs.pose_now()[:3].copy()
    driver.send(driver.line([middle[0], lo[1] + 0.25 * (hi[1] - lo[1]), hi[2] - 0.05], speed=speed))
    time.sleep(3.0)
    obs.events["moved_after_recovery"] = float(np.linalg.norm(obs.pose_now()[:3] - before))


def _inference_session(setup: Setup, obs: Observations, ip: str) -> dict[str, subprocess.Popen]:
    seed = 1
    obs.events["inference_params"] = {"config_file": setup.inference_file, "use_sim": True, "sim_seed": seed}
    return {
        "sim_world": node_process("sim_world", {"robot_ip": ip, "config_file": setup.sim_world_file, "seed": seed,
                                                "output_dir": setup.work_dir}, setup.work_dir / "sim_world.log"),
        "controller": node_process("controller", {"config_file": setup.controller_file, "robot_ip": ip},
                                   setup.work_dir / "controller.log"),
        "inference": node_process("inference", obs.events["inference_params"], setup.work_dir / "inference.log"),
    }


def _inference_crash(driver: Driver, obs: Observations, setup: Setup) -> None:
    processes = obs.events["processes"]
    inference = processes["inference"]
    # Mid-chunk: the arm moving, 0.3-1 s after a chunk arrived.
    wait_for(lambda: obs.chunk_arrivals and obs.joint_states and obs.joint_speed_now() > 0.05
             and 0.3 < time.time() - obs.chunk_arrivals[-1] < 1.0, setup.site.inference_start_timeout_s,
             "the inference node's chunks to move the arm")
    inference.kill()
    inference.wait()
    killed = obs.events["killed"] = time.time()
    c = setup.controller
    braking = c.max_linear_speed / c.max_linear_acceleration + setup.site.silence_halt_margin_s
    # The arm at rest for 2 s after the silence halt, the braking taken on the robot's (possibly slow) clock.
    wait_for(lambda: time.time() > obs.after_robot_seconds(killed + c.max_chunk_silence_s, braking) + 2.0, 120,
             "the silence halt after the kill")
    obs.events["restarted"] = time.time()
    processes["inference"] = node_process("inference", obs.events["inference_params"], setup.work_dir / "inference_restarted.log")
    wait_for(lambda: any(t > obs.events["restarted"] for t in obs.chunk_arrivals), setup.site.inference_start_timeout_s,
             "chunks from the restarted inference node")


STEPS: dict[str, Step] = {
    "bad_chunks": Step("controller", _bad_chunks, lambda o, s: checks.bad_chunks(o, s.site),
                       "every kind of bad chunk, and a malformed message"),
    "speed_at_faces": Step("controller", _faces, lambda o, s: checks.faces(o, s.controller, s.site),
                           "chunks at twice the cap toward each workspace face"),
    "workspace_floor": Step("controller", _floor, lambda o, s: checks.floor(o, s.controller, s.site),
                            "chunks stopping abruptly at the workspace floor"),
    "below_floor": Step("controller", _below_floor, lambda o, s: checks.below_floor(o, s.controller, s.site),
                        "chunks aiming a little below the workspace floor (within workspace_tolerance_m)"),
    "splices": Step("controller", _splices, lambda o, s: checks.splices(o, s.controller, s.site),
                    "overlapping chunks that turn the motion"),
    "silence": Step("controller", _silence, lambda o, s: checks.silence(o, s.controller, s.site),
                    "one long chunk, then chunk silence"),
    "estop": Step("controller", _estop, lambda o, s: checks.estop(o, s.site), "the e-stop while moving, then reset"),
    "gripper": Step("controller", _gripper, lambda o, s: checks.gripper(o, s.site), "gripper targets flipping mid-move"),
    "divergence_guard": Step("controller", _divergence_guard, lambda o, s: checks.divergence_guard(o, s.controller, s.site),
                             "diverged predictions on /policy/divergence while at speed (if configured)"),
    "robot_errors": Step("robot_errors", _robot_errors, lambda o, s: checks.robot_errors(o, s.site),
                         "a Cartesian reflex and a motion-generator error, recovered"),
    "inference_crash": Step("inference", _inference_crash, lambda o, s: checks.inference_crash(o, s.controller, s.site),
                            "the inference process SIGKILLed mid-chunk, then restarted"),
}
SESSIONS = {"controller": _controller_session, "robot_errors": _robot_errors_session, "inference": _inference_session}


def run_session(session: str, steps: list[str], setup: Setup, progress: Callable[[str], None] = print) -> list[checks.Check]:
    """Start the session's processes, run ``steps`` in order, stop everything; the steps' checks, and one
    failed check for a step that could not run to its end (with the reason)."""
    ip = robot_ip_for_this_process()
    processes: dict[str, subprocess.Popen] = {}
    failures: dict[str, str] = {}
    with observer_node(f"preflight_{session}") as (obs, driver):
        try:
            processes.update(SESSIONS[session](setup, obs, ip))
            obs.events["processes"] = processes
            _while_running(processes["controller"], setup.work_dir / "controller.log", lambda: len(obs.poses) > 50, 60,
                           "/ee_pose from the controller")
            if session != "inference":  # a policy must cope with the start pose it gets, as on the real arm
                _enter_workspace(driver, obs, setup)
            for name in steps:
                progress(f"  {name}: {STEPS[name].description}")
                try:
                    STEPS[name].act(driver, obs, setup)
                except (TimeoutError, RuntimeError) as exc:
                    failures[name] = str(exc)
                    break  # the stack is in an unknown state: the later steps would measure the wrong thing
            obs.events["controller_alive"] = processes["controller"].poll() is None
        except (TimeoutError, RuntimeError) as exc:
            failures.update({name: f"the session did not start: {exc}" for name in steps})
        finally:
            for process in processes.values():
                stop(process)
    results = []
    for name in steps:
        if name in failures:
            results.append(checks.Check(f"{name} ran to its end", None, 1, "", False, failures[name]))
            continue
        try:
            results += STEPS[name].evaluate(obs, setup)
        except (KeyError, ValueError, IndexError) as exc:  # too little was recorded to measure it
            results.append(checks.Check(f"{name} measured", None, 1, "", False, f"{type(exc).__name__}: {exc}"))
    return [*results, *checks.survived(obs)]
