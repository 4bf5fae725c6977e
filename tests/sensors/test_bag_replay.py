"""Bag replay: recorded camera topics (rosbags MCAP) paced and restamped as if live, driving the real inference node."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from trajectory_msgs.msg import MultiDOFJointTrajectory

from video_policy_ros.config import BagReplayConfig, ConfigError, InferenceConfig
from video_policy_ros.nodes.bag_replay_node import BagReplayNode
from video_policy_ros.nodes.conversions import from_time
from video_policy_ros.nodes.inference_node import InferenceNode
from video_policy_ros.sensors.bag_replay import BagReplay

from .recorded_bag import CAMERAS, POSE_AT, TRANSPORT_DELAY_S, write_episode


@pytest.fixture(scope="module")
def episode(tmp_path_factory):
    return write_episode(tmp_path_factory.mktemp("bags") / "episode")


def test_messages_come_at_their_recorded_pace_in_recorded_order(episode):
    replay = BagReplay(BagReplayConfig(bag=episode.path))
    started = time.time()
    arrivals = [(time.time(), m) for m in replay.messages()]
    elapsed = time.time() - started
    recorded_span = arrivals[-1][1].log_time - arrivals[0][1].log_time
    assert recorded_span == pytest.approx((episode.frames - 1) / episode.fps + 0.005, abs=1e-6)
    assert recorded_span * 0.98 <= elapsed <= recorded_span + 1.0  # never early; late only by a loaded machine
    log_times = [m.log_time for _, m in arrivals]
    assert log_times == sorted(log_times)
    # Each message is published no earlier than its recorded offset from the first.
    assert all(t - started >= (m.log_time - log_times[0]) - 1e-3 for t, m in arrivals)
    assert {m.topic for _, m in arrivals} == {f"/cameras/{c}/{k}" for c in CAMERAS for k in ("image_raw", "camera_info")}


def test_stamps_move_by_one_constant_at_rate_one_and_scale_with_the_pace(episode):
    replay = BagReplay(BagReplayConfig(bag=episode.path, rate=2.0))
    first = next(replay.messages())
    started = time.time()
    measured = first.log_time - TRANSPORT_DELAY_S  # the first frame's header stamp
    assert replay.live_stamp(measured) == pytest.approx(started - TRANSPORT_DELAY_S / 2, abs=0.05)
    assert replay.live_stamp(measured + 1.0) - replay.live_stamp(measured) == pytest.approx(0.5)


def test_cameras_and_extra_topics_select_what_is_replayed(episode):
    replay = BagReplay(BagReplayConfig(bag=episode.path, cameras=("wrist",), extra_topics=("/ee_pose",)))
    assert set(replay.topics) == {"/cameras/wrist/image_raw", "/cameras/wrist/camera_info", "/ee_pose"}


def test_a_topic_not_in_the_bag_is_named_with_what_the_bag_has(episode):
    with pytest.raises(ConfigError, match=r"\['/cameras/side/image_raw'\] not in the bag; it has .*/cameras/front/image_raw"):
        BagReplay(BagReplayConfig(bag=episode.path, cameras=("side",)))


def test_a_folder_that_is_no_bag_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not a rosbag2 folder"):
        BagReplay(BagReplayConfig(bag=tmp_path))
    with pytest.raises(ConfigError, match="set the bag"):
        BagReplay(BagReplayConfig())


def test_replay_drives_the_inference_node_as_live_cameras_do(ros_graph, episode):
    """The inference node assembles synchronised, fresh observations of the recorded frames and publishes chunks."""
    inference = ros_graph.add(InferenceNode(InferenceConfig(cameras=CAMERAS, rate_hz=5.0), context=ros_graph.context))
    probe = ros_graph.add(rclpy.create_node("probe", context=ros_graph.context))
    chunks: list[MultiDOFJointTrajectory] = []
    probe.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", chunks.append, 10)
    replay = ros_graph.add(BagReplayNode(
        BagReplayConfig(bag=episode.path, extra_topics=("/ee_pose", "/task")), context=ros_graph.context
    ))

    observations = []

    def assembled() -> bool:
        observation, _ = inference.assembler.build(time.time())
        if observation is not None:
            observations.append(observation)
        return len(observations) >= 5 and len(chunks) >= 1

    assert ros_graph.spin_until(assembled, timeout_s=episode.frames / episode.fps + 3.0)
    live_stamps = {round(replay.replay.live_stamp(episode.stamp(i, c)), 6): (i, c) for i in range(episode.frames) for c in CAMERAS}
    for observation in observations:
        assert observation.instruction == episode.instruction
        indices = set()
        for camera, frame in observation.frames.items():
            index, recorded_camera = live_stamps[round(frame.stamp, 6)]  # KeyError: not a recorded stamp moved to now
            assert recorded_camera == camera
            np.testing.assert_array_equal(frame.image, episode.image(index, camera))
            indices.add(index)
        assert len(indices) == 1, "both cameras' frames come from the same recorded instant"
        assert any(np.allclose(observation.tcp_pose, POSE_AT(i)) for i in range(episode.frames))
    chunk_stamps = {round(from_time(c.header.stamp), 6) for c in chunks}
    assert chunk_stamps <= {round(s, 6) for s in live_stamps}, "chunks are stamped with replayed observation stamps"
