"""The Video Policy behind the inference node, over real rclpy, from a checkpoint the real
training CLI wrote: chunks come out per the topic contract, with the predicted video."""

from __future__ import annotations

import numpy as np
import pytest
from rclpy.executors import MultiThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from tests.integration.inference_harness import TCP, InferenceHarness
from video_policy_ros.cli import main as cli
from video_policy_ros.config import InferenceConfig
from video_policy_ros.data.episode import Episode
from video_policy_ros.nodes import conversions as conv

pytestmark = pytest.mark.integration
CAMERAS = ("front", "wrist")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    data = tmp_path_factory.mktemp("episodes")
    rng = np.random.default_rng(0)
    for i in range(3):
        n = 40
        poses = np.tile(TCP, (n, 1))
        poses[:, 0] += np.linspace(0, 0.1, n)
        frames = {c: rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8) for c in CAMERAS}
        Episode("touch the red cube", 10.0, frames, poses, np.full(n, 0.04)).save(data / f"ep{i}.npz")
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    assert cli(["train", "--data", str(data), "--out", str(out), "--mode", "joint", "--steps", "2",
                "--batch-size", "2", "--eval-every", "0", "--threads", "1"]) == 0
    return out


def test_inference_node_publishes_chunks_and_predicted_video(checkpoint):
    config = InferenceConfig(policy="video_policy", model=checkpoint, cameras=CAMERAS, num_steps=2, warmup_calls=1,
                             backend="torch", predicted_video_rate_hz=10.0)
    harness = InferenceHarness(config, MultiThreadedExecutor)
    received: dict[str, list] = {"chunk": [], "gripper": [], "video": []}
    harness.feeder.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", received["chunk"].append, 10)
    harness.feeder.create_subscription(JointTrajectory, "/policy/gripper_chunk", received["gripper"].append, 10)
    harness.feeder.create_subscription(Image, "/policy/predicted_video/front", received["video"].append,
                                       qos_profile_sensor_data)
    try:
        harness.feed_until(lambda: received["chunk"] and received["video"], timeout=60)
    finally:
        harness.close()
    sent_stamps = harness.sent_stamps
    assert received["chunk"], "no action chunk within 60 s"
    chunk_msg = received["chunk"][0]
    gripper_msg = next(g for g in received["gripper"] if g.header.stamp == chunk_msg.header.stamp)
    chunk = conv.chunk_from_msgs(chunk_msg, gripper_msg, hold_gripper=0.0)
    assert len(chunk) == 32 and chunk.dt == pytest.approx(0.1)
    assert round(chunk.stamp, 6) in {round(s, 6) for s in sent_stamps}, "chunk stamp is not an observation stamp"
    assert np.all(np.isfinite(chunk.poses))
    assert np.allclose(np.linalg.norm(chunk.poses[:, 3:], axis=1), 1.0, atol=1e-6)
    assert np.all(np.linalg.norm(chunk.poses[:, :3] - TCP[:3], axis=1) < 0.5), "targets must be absolute, near the TCP"
    strip = received["video"][0]
    assert strip.encoding == "rgb8" and strip.width == 4 * strip.height  # the 4 predicted frames side by side
