"""The data loop through the real graph: sim world + controller + scripted expert + recorder → bag →
converter → one ``video-policy train`` step. Each command runs as a user would run it."""

import os
import subprocess
import sys

from tests.data.test_bags import read_independently
from tests.repo import REPO
from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.data.bag_reader import read_bag
from video_policy_ros.data.episode import Episode, list_episodes
from video_policy_ros.data.events import parse_event


def video_policy(*args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "video_policy_ros.cli", *args], env=env, cwd=REPO, timeout=timeout,
                          capture_output=True, text=True)


def test_collect_convert_and_train_a_step(tmp_path):
    bags, dataset = tmp_path / "bags", tmp_path / "dataset"
    collected = video_policy("collect", "--episodes", "1", "--first-seed", "3", "--out", str(bags),
                             "--robot-ip", robot_ip_for_this_process(), "--timeout", "45", timeout=240)
    assert collected.returncode == 0, collected.stdout[-2000:] + collected.stderr[-3000:]
    assert "1/1 successful episodes" in collected.stdout

    (bag_path,) = bags.iterdir()
    bag = read_bag(bag_path)
    assert bag.episode["success"] is True and bag.episode["seed"] == 3 and bag.episode["task"].startswith("touch the")
    assert set(bag.episode["cameras"]) == {"front", "wrist"} and bag.episode["robot"]["sim"] is True
    events = [parse_event(m.data) for m in bag.messages("/episode/events")]
    assert [(e["event"], e["source"]) for e in events] == [("start", "sim_world"), ("success", "sim_world"),
                                                          ("stop", "recorder")]
    independent = read_independently(next(bag_path.glob("*.mcap")))
    for topic in ("/cameras/front/image_raw", "/cameras/wrist/camera_info", "/joint_states", "/ee_pose",
                  "/task", "/episode/events"):
        assert len(independent[topic]) == len(bag.topics[topic]) > 0, topic

    converted = video_policy("convert", str(bags), "--out", str(dataset), "--size", "16", "16", timeout=120)
    assert converted.returncode == 0, converted.stderr[-3000:]
    (episode_file,) = list_episodes(dataset)
    episode = Episode.load(episode_file)
    assert episode.has_actions and episode.success and len(episode) >= 10
    assert episode.frames["front"].shape[1:] == (16, 16, 3) and (dataset / "stats.json").is_file()

    trained = video_policy("train", "--data", str(dataset), "--out", str(tmp_path / "ckpt"), "--steps", "1",
                           "--batch-size", "2", "--eval-every", "0", "--threads", "1", timeout=300)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()


def test_collect_refuses_bad_arguments_with_one_line(tmp_path):
    bad = video_policy("collect", "--episodes", "0", "--out", str(tmp_path), timeout=60)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1] == "error: --episodes must be at least 1, got 0"
    (tmp_path / "recorder.yaml").write_text("image_encoding: webp\n")
    bad = video_policy("collect", "--config-dir", str(tmp_path), timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'recorder.yaml'}: invalid value for 'image_encoding'")
    assert not any(tmp_path.glob("episode_*"))
