"""``video-policy dagger``: a learned policy drives a real sim episode and the expert labels every frame."""

import numpy as np
import pytest

from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.cli import main as cli
from video_policy_ros.data.episode import Episode
from video_policy_ros.sim.demos import label_episode
from video_policy_ros.sim.scene import sample_layout
from video_policy_ros.config import TaskConfig

pytestmark = pytest.mark.integration


def synthetic_demos(folder, n=2):
    rng = np.random.default_rng(0)
    for i in range(n):
        t = np.arange(12)
        poses = np.tile([0.5, 0.0, 0.4, 1.0, 0.0, 0.0, 0.0], (12, 1))
        poses[:, 1] += 0.005 * t * (1 if i % 2 else -1)
        frames = {c: rng.integers(0, 255, (12, 48, 64, 3), dtype=np.uint8) for c in ("front", "wrist")}
        Episode("touch the red cube", 10.0, frames, poses, np.full(12, 0.04)).save(folder / f"ep_{i}.npz")


def test_a_bc_policy_drives_and_every_frame_gets_the_experts_chunk(tmp_path):
    synthetic_demos(tmp_path)
    assert cli(["train-bc", "--data", str(tmp_path), "--out", str(tmp_path / "bc"), "--steps", "3",
                "--val-episodes", "0"]) == 0
    out = tmp_path / "round1"
    assert cli(["dagger", "--policy", "bc", "--model", str(tmp_path / "bc"), "--out", str(out), "--episodes", "1",
                "--first-seed", "1000", "--task", "touch", "--timeout", "4",
                "--robot-ip", robot_ip_for_this_process()]) == 0
    episode = Episode.load(out / "dagger_01000.npz")
    assert episode.success is False  # three training steps do not solve the task
    assert episode.relabelled  # the frames show the policy's motion, not the expert's labels
    layout = sample_layout(1000, TaskConfig(kind="touch"))
    assert episode.instruction == layout.instruction and len(episode) >= 30
    # The labels are the expert's plans from the states the policy visited
    labelled = label_episode(Episode(episode.instruction, episode.fps, episode.frames, episode.tcp_poses,
                                     episode.gripper), layout)
    assert np.allclose(labelled.expert_poses, episode.expert_poses)
    target_top = layout.cube_positions[layout.target] + [0, 0, 0.03]
    assert np.linalg.norm(episode.expert_poses[0, -1, :2] - target_top[:2]) < 1e-6  # each plan ends at the cube


def test_dagger_keeps_clear_of_the_evaluation_seeds(tmp_path, capsys):
    assert cli(["dagger", "--policy", "bc", "--model", str(tmp_path), "--out", str(tmp_path / "o"),
                "--first-seed", "9990", "--episodes", "20"]) == 2
    assert "held out for video-policy eval" in capsys.readouterr().err
