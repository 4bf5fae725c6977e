"""Synthetic episodes written through the real recorder core: known trajectories, known faults."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from video_policy_ros.data.events import make_event
from video_policy_ros.data.recording import EpisodeRecorder
from video_policy_ros.geometry import quat_multiply, rotvec_to_quat
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.recorder_node import compress_image
from video_policy_ros.types import ArmState, CameraFrame

T0 = 1000.0  # measurement clock at the first sample
RECEIVE_DELAY_S = 0.01
IMAGE_SIZE = (48, 64)  # (H, W) recorded


def tcp_pose(t: float) -> np.ndarray:
    """The known TCP motion: 0.1 m/s along x, turning 0.2 rad/s about z, from gripper-down."""
    down = np.array([1.0, 0.0, 0.0, 0.0])
    turn = rotvec_to_quat(np.array([0.0, 0.0, 0.2 * t]))
    return np.concatenate([[0.4 + 0.1 * t, 0.0, 0.3], quat_multiply(turn, down)])


def gripper(t: float) -> float:
    return 0.04 - 0.01 * t


def frame_value(index: int) -> int:
    """Grey level of camera frame ``index`` (so a test can tell which frame was picked)."""
    return (index * 7) % 250


def _serialize_event(event: dict) -> bytes:
    return serialize_message(String(data=json.dumps(event)))


def write_bag(out_dir: Path, *, seconds: float = 2.0, cameras=("front", "wrist"), camera_fps: float = 15.0,
              state_hz: float = 100.0, encoding: str = "jpeg", with_state: bool = True, drop_frames=(),
              clock_jump: tuple[float, float] | None = None, task: str = "touch the red cube",
              verdict: str | None = "success", empty_effort: bool = False, extra=(),
              recorder: EpisodeRecorder | None = None) -> Path:
    """Record one episode; ``clock_jump = (at, by)`` shifts every stamp after ``at`` s by ``by`` s;
    ``empty_effort`` publishes JointStates as drivers that leave ``effort`` empty do; ``extra`` adds
    ``(t, topic, msgtype, cdr bytes)`` messages as they are."""
    recorder = recorder or EpisodeRecorder(out_dir, _serialize_event, stop_delay_s=0.0)
    recorder.note_task(task, serialize_message(String(data=task)))  # latched: arrives before the start
    recorder.handle_event(make_event("start", "test", task=task, seed=7))
    messages = []  # (receive time, topic, bag type, bytes)

    def stamp(t: float) -> float:
        return T0 + t + (clock_jump[1] if clock_jump and t >= clock_jump[0] else 0.0)

    def add(t: float, topic: str, msgtype: str, msg) -> None:
        messages.append((T0 + t + RECEIVE_DELAY_S, topic, msgtype, serialize_message(msg)))

    for cam in cameras:
        k = np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])
        for i in range(int(seconds * camera_fps) + 1):
            if i in drop_frames:
                continue
            t = i / camera_fps
            image = np.full((*IMAGE_SIZE, 3), frame_value(i), np.uint8)
            msg = conv.image_to_msg(CameraFrame(cam, stamp(t), image))
            if encoding == "raw":
                add(t, f"/cameras/{cam}/image_raw", "sensor_msgs/msg/Image", msg)
            else:
                add(t, f"/cameras/{cam}/image_raw/compressed", "sensor_msgs/msg/CompressedImage",
                    compress_image(msg, cam, encoding, 95))
            add(t, f"/cameras/{cam}/camera_info", "sensor_msgs/msg/CameraInfo",
                conv.camera_info_msg(cam, stamp(t), IMAGE_SIZE[1], IMAGE_SIZE[0], k))
            recorder.note_camera(cam, IMAGE_SIZE[1], IMAGE_SIZE[0], k)
    if with_state:
        for i in range(int(seconds * state_hz) + 1):
            t = i / state_hz
            state = ArmState(stamp(t), np.full(7, float(i)), np.zeros(7), tcp_pose(t), gripper(t))
            joint_state = conv.joint_state_msg(state)
            if empty_effort:
                joint_state.effort = []
            add(t, "/joint_states", "sensor_msgs/msg/JointState", joint_state)
            add(t, "/ee_pose", "geometry_msgs/msg/PoseStamped", conv.pose_msg(stamp(t), tcp_pose(t)))
    messages += [(T0 + t + RECEIVE_DELAY_S, topic, msgtype, data) for t, topic, msgtype, data in extra]
    for receive, topic, msgtype, data in sorted(messages, key=lambda m: m[0]):
        recorder.write(topic, msgtype, int(receive * 1e9), data)
    if verdict is not None:
        recorder.handle_event(make_event(verdict, "test", "scripted"), now=0.0)
        recorder.tick(now=1.0)
    else:
        recorder.handle_event(make_event("stop", "test"))
    return recorder.finished[-1][0]
