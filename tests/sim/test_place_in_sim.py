"""The place expert in the real sim: franky-sim's FR3 and gripper over the libfranka protocol,
MuJoCo contact physics, the controller core driving through franky. The cube must be lifted
off the table by the fingers (friction at the contacts, nothing attaches it) and end in the bowl."""

import time

import mujoco
import numpy as np
import pytest

from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.config import ControllerConfig, SimWorldConfig, TaskConfig
from video_policy_ros.control.watchdog import ChunkRejected
from video_policy_ros.sim.expert import ExpertParams, make_expert
from video_policy_ros.sim.scene import CUBE_HALF_SIZE
from video_policy_ros.sim.task import in_bowl
from video_policy_ros.types import FINGERS_CLOSED, FINGERS_OPEN

pytestmark = pytest.mark.integration


def test_expert_grasps_lifts_and_places_the_cube_in_the_bowl():
    from video_policy_ros.nodes.controller_node import build_control_loop
    from video_policy_ros.sim.world import SimWorld

    ip = robot_ip_for_this_process()
    config = SimWorldConfig(seed=3, robot_ip=ip, record_camera=None, task=TaskConfig(kind="place", timeout_s=60))
    with SimWorld(config) as world:
        model = world._sim.model
        joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, f"cube_{world.layout.target}_joint")
        cube_qpos = int(model.jnt_qposadr[joint])
        loop = build_control_loop(ControllerConfig(robot_ip=ip), on_state=lambda state: None)
        loop.start()
        assert loop.wait_until_running(30.0), f"no robot state from the sim world: {loop.fatal}"
        carried = []  # (cube height above the table, finger position) while the expert holds the cube
        rejected = []  # e.g. a start jump when the simulation falls behind real time on a loaded machine
        try:
            expert = make_expert(world.layout)
            deadline = time.monotonic() + 60
            while not world.done.is_set() and time.monotonic() < deadline:
                state = loop.latest_state
                try:  # as the inference node does: a rejected chunk is reported, the next one follows
                    loop.submit_chunk(expert.plan(state.tcp_pose, state.gripper, state.stamp))
                except ChunkRejected as exc:
                    rejected.append(str(exc))
                cube = world.latest_state().qpos[cube_qpos:cube_qpos + 3]
                if expert.grasped:
                    carried.append((cube[2] - CUBE_HALF_SIZE, state.gripper))
                world.check()
                time.sleep(0.5)
        finally:
            loop.close()
        cube = world.latest_state().qpos[cube_qpos:cube_qpos + 3].copy()
    result = world.result
    assert result is not None and result.success, f"{result} (cube at {cube}, bowl at {world.layout.bowl_position})"
    assert in_bowl(world.layout, cube)
    assert len(rejected) <= 3, rejected
    lifted = [(height, fingers) for height, fingers in carried if height > 0.05]
    assert lifted, f"the cube was never lifted 5 cm off the table: {carried[:10]}"
    # Lifted, the fingers rest on the cube's faces (contact), not closed on nothing.
    assert all(abs(fingers - CUBE_HALF_SIZE) < 0.006 for _, fingers in lifted), lifted


def test_demos_command_records_a_place_episode_whose_grasp_once_stalled_the_control_loop(tmp_path):
    """Seed 10's grasp made franky's gripper calls block the control thread for > 3 s (the chunk
    then counted as stale and the demo was aborted) while gripper I/O ran in that thread."""
    from video_policy_ros.cli import main as cli
    from video_policy_ros.data.episode import Episode

    assert cli(["demos", "--out", str(tmp_path), "--episodes", "1", "--first-seed", "10", "--task", "mixed",
                "--size", "64", "48", "--robot-ip", robot_ip_for_this_process()]) == 0
    episode = Episode.load(tmp_path / "episode_00010.npz")
    assert episode.instruction == "put the blue cube in the bowl" and episode.success
    assert episode.frames["front"].shape[1:] == (48, 64, 3) and episode.gripper.min() < CUBE_HALF_SIZE + 0.003
    # The arm stops where the expert aims (the table lies 3.5 cm below the grasp's TCP): demonstrations
    # once ran 1-2 cm past each stop, below the workspace floor, and policies learned to aim there.
    grasp_height = CUBE_HALF_SIZE + ExpertParams().grasp_offset
    assert episode.tcp_poses[:, 2].min() > grasp_height - 0.004, episode.tcp_poses[:, 2].min()
    assert episode.tcp_poses[:, 2].min() > ControllerConfig().workspace.min[2]
    # Every frame carries the expert's commanded chunk (the actions training uses): open on the way down,
    # closed from the grasp until the release above the bowl.
    assert episode.expert_poses.shape == (len(episode), 32, 7) and episode.expert_gripper.shape == (len(episode), 32)
    commands = episode.expert_gripper[:, 0]
    assert set(np.unique(commands)) == {FINGERS_CLOSED, FINGERS_OPEN}
    closed = np.flatnonzero(commands == FINGERS_CLOSED)
    assert commands[0] == FINGERS_OPEN and commands[closed[-1] + 1] == FINGERS_OPEN
    assert episode.tcp_poses[closed[0], 2] < grasp_height + 0.01  # closes at the grasp
