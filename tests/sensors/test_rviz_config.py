"""rviz/video_policy.rviz only shows contract topics (DESIGN.md §2), each with a display of its type."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

RVIZ_CONFIG = Path(__file__).resolve().parents[2] / "rviz" / "video_policy.rviz"

# The contract topics RViz can show, with their message types; <name> is a camera name.
CONTRACT_TOPICS = {
    r"/cameras/[a-z0-9_]+/image_raw": "sensor_msgs/Image",
    r"/cameras/[a-z0-9_]+/camera_info": "sensor_msgs/CameraInfo",
    r"/joint_states": "sensor_msgs/JointState",
    r"/ee_pose": "geometry_msgs/PoseStamped",
    r"/policy/action_chunk": "trajectory_msgs/MultiDOFJointTrajectory",
    r"/policy/gripper_chunk": "trajectory_msgs/JointTrajectory",
    r"/policy/predicted_video/[a-z0-9_]+": "sensor_msgs/Image",
    r"/policy/predicted_path": "visualization_msgs/MarkerArray",
    r"/controller/estop": "std_msgs/Bool",
    r"/diagnostics": "diagnostic_msgs/DiagnosticArray",
    r"/task": "std_msgs/String",
}
DISPLAY_TYPES = {
    "rviz_default_plugins/Image": "sensor_msgs/Image",
    "rviz_default_plugins/Camera": "sensor_msgs/Image",
    "rviz_default_plugins/MarkerArray": "visualization_msgs/MarkerArray",
    "rviz_default_plugins/Pose": "geometry_msgs/PoseStamped",
}


def contract_type(topic: str) -> str | None:
    return next((t for pattern, t in CONTRACT_TOPICS.items() if re.fullmatch(pattern, topic)), None)


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(RVIZ_CONFIG.read_text())


@pytest.fixture(scope="module")
def topic_displays(config) -> list[tuple[str, str]]:
    """(display class, topic) for every display that subscribes to a topic."""
    displays = config["Visualization Manager"]["Displays"]
    return [(d["Class"], d["Topic"]["Value"]) for d in displays if "Topic" in d]


def test_fixed_frame_is_the_robot_base(config):
    assert config["Visualization Manager"]["Global Options"]["Fixed Frame"] == "fr3_link0"


def test_every_topic_shown_is_a_contract_topic_of_the_display_type(topic_displays):
    for display, topic in topic_displays:
        assert contract_type(topic) is not None, f"{topic} is not a contract topic"
        assert DISPLAY_TYPES.get(display) == contract_type(topic), f"{display} cannot show {topic}"


def test_shows_cameras_predictions_path_pose_and_tf(config, topic_displays):
    assert set(topic_displays) == {
        ("rviz_default_plugins/Image", "/cameras/front/image_raw"),
        ("rviz_default_plugins/Image", "/cameras/wrist/image_raw"),
        ("rviz_default_plugins/Image", "/policy/predicted_video/front"),
        ("rviz_default_plugins/Image", "/policy/predicted_video/wrist"),
        ("rviz_default_plugins/MarkerArray", "/policy/predicted_path"),
        ("rviz_default_plugins/Pose", "/ee_pose"),
    }
    assert "rviz_default_plugins/TF" in {d["Class"] for d in config["Visualization Manager"]["Displays"]}


def test_images_subscribe_best_effort_to_match_the_sensor_data_publishers(config):
    for display in config["Visualization Manager"]["Displays"]:
        if display["Class"] == "rviz_default_plugins/Image":
            assert display["Topic"]["Reliability Policy"] == "Best Effort", display["Name"]


def test_each_camera_is_shown_next_to_its_predicted_video(topic_displays):
    image_topics = [topic for display, topic in topic_displays if display == "rviz_default_plugins/Image"]
    cameras = [t.split("/")[2] for t in image_topics if t.startswith("/cameras/")]
    assert cameras, "no camera image display"
    for camera in cameras:
        index = image_topics.index(f"/cameras/{camera}/image_raw")
        assert image_topics[index + 1] == f"/policy/predicted_video/{camera}", f"{camera}: prediction not beside it"
