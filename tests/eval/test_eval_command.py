"""``video-policy eval`` end to end on a tiny run: real sim world (child process), controller,
inference and the episode video node over rclpy; the summary JSON and the mp4s it writes."""

import json
import multiprocessing
import os
import subprocess
import sys

import imageio.v2 as imageio
import pytest

from tests.repo import REPO
from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.evaluation.stats import wilson_interval

pytestmark = pytest.mark.integration
SHIPPED = REPO / "models" / "video_policy_tiny"


def _eval(tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, "-m", "video_policy_ros.cli", "eval", "--robot-ip", robot_ip_for_this_process(),
         "--out", str(out), *args],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), cwd=REPO, timeout=300,
    )
    summary = out / "summary.json"
    assert summary.is_file(), (result.stdout + result.stderr)[-3000:]
    assert f"summary: {summary.resolve()}" in result.stdout
    return result, json.loads(summary.read_text())


def test_expert_episodes_are_counted_per_task_with_wilson_intervals(tmp_path):
    result, summary = _eval(tmp_path, "--episodes", "2", "--task", "touch", "--first-seed", "20000")
    assert result.returncode == 0, result.stderr[-3000:]
    episodes = summary["episodes"]
    assert [e["seed"] for e in episodes] == [20000, 20001]
    assert all(e["task"] == "touch" and e["instruction"].startswith("touch the") for e in episodes)
    assert all(e["success"] and e["result"]["success"] and e["chunks"] > 0 for e in episodes)
    rate = summary["success_rate"]["touch"]
    assert (rate["successes"], rate["episodes"]) == (2, 2) and rate["wilson95"] == pytest.approx(list(wilson_interval(2, 2)))
    assert "place" not in summary["success_rate"]
    frames = imageio.mimread(episodes[0]["video"], memtest=False)
    assert len(frames) > 20 and frames[0].shape == (240, 320, 3)  # no predicted video: the camera alone
    assert "scripted_expert touch: 2/2 = 100%" in result.stdout


def test_a_video_policy_episode_records_its_predicted_video_beside_the_camera(tmp_path):
    """The shipped model is not expected to solve the episode in 8 s; it must run and be filmed."""
    result, summary = _eval(tmp_path, "--policy", "video_policy", "--model", str(SHIPPED), "--episodes", "1",
                            "--task", "place", "--timeout", "8", "--num-steps", "2", "--guidance", "1.0")
    episode = summary["episodes"][0]
    assert episode["error"] is None and episode["result"]["instruction"].startswith("put the")
    assert episode["chunks"] > 0, result.stderr[-3000:]
    frames = imageio.mimread(episode["video"], memtest=False)
    assert frames[0].shape == (240, 640, 3)
    assert frames[-1][:, 320:].max() > 0, "the predicted video panel stayed black"
    assert summary["success_rate"]["place"]["episodes"] == 1


def test_a_folder_that_is_no_checkpoint_stops_before_any_episode_with_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "video_policy_ros.cli", "eval", "--policy", "bc", "--model", str(tmp_path / "empty"),
         "--out", str(tmp_path / "eval")],
        capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), cwd=REPO, timeout=120,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --model ")
    assert "not a BC checkpoint" in result.stderr and "video-policy train-bc" in result.stderr


def test_a_controller_that_cannot_start_fails_that_episode_only(tmp_path, monkeypatch):
    """One episode's arm connection failing (as under heavy load) is recorded; the sim world child is stopped."""
    from video_policy_ros.config import ControllerConfig, InferenceConfig, SimWorldConfig
    from video_policy_ros.control.arm import ArmError
    from video_policy_ros.nodes import controller_node
    from video_policy_ros.nodes.episode_runner import EpisodeSpec, run_episode

    def refuse(*args, **kwargs):
        raise ArmError("network", "lost the robot's state stream: libfranka: UDP receive: Timeout")

    monkeypatch.setattr(controller_node, "ControllerNode", refuse)
    ip = robot_ip_for_this_process()
    spec = EpisodeSpec(SimWorldConfig(seed=1, robot_ip=ip), ControllerConfig(robot_ip=ip), InferenceConfig(),
                       video_path=tmp_path / "episode.mp4")
    outcome = run_episode(spec)
    assert outcome.result is None and outcome.error.startswith("controller: lost the robot's state stream")
    assert outcome.video == tmp_path / "episode.mp4" and outcome.chunks == 0
    assert not multiprocessing.active_children(), "the sim world child outlived its episode"
