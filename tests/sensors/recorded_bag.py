"""Small rosbag2 MCAP bags with the contract's topic names, written with the rosbags writer.

Payloads are serialised by rclpy, as a recorder of the live graph stores them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore
from std_msgs.msg import String

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.types import CameraFrame

CAMERAS = ("front", "wrist")
SIZE = (32, 24)  # width, height
K = np.array([[30.0, 0.0, 16.0], [0.0, 30.0, 12.0], [0.0, 0.0, 1.0]])
TRANSPORT_DELAY_S = 0.02  # measured → logged by the recorder
POSE_AT = lambda i: np.array([0.4 + 0.001 * i, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])  # noqa: E731


@dataclass(frozen=True)
class RecordedEpisode:
    path: Path
    start: float  # measurement time of the first frame
    fps: float
    frames: int
    instruction: str

    def stamp(self, index: int, camera: str) -> float:
        """Cameras are 5 ms apart, as two free-running cameras are."""
        return self.start + index / self.fps + (0.005 if camera == "wrist" else 0.0)

    @staticmethod
    def image(index: int, camera: str) -> np.ndarray:
        width, height = SIZE
        return np.full((height, width, 3), (index % 256, 100 if camera == "front" else 200, 7), np.uint8)


def write_episode(path: Path, frames: int = 30, fps: float = 15.0, start: float = 1_600_000_000.0,
                  instruction: str = "touch the red cube") -> RecordedEpisode:
    episode = RecordedEpisode(path, start, fps, frames, instruction)
    typestore = get_typestore(Stores.ROS2_KILTED)
    messages = []  # (log time, topic, msgtype, message)
    messages.append((start - 0.1, "/task", "std_msgs/msg/String", String(data=instruction)))
    width, height = SIZE
    for i in range(frames):
        for camera in CAMERAS:
            stamp = episode.stamp(i, camera)
            image = conv.image_to_msg(CameraFrame(camera, stamp, episode.image(i, camera)))
            info = conv.camera_info_msg(camera, stamp, width, height, K)
            messages.append((stamp + TRANSPORT_DELAY_S, f"/cameras/{camera}/image_raw", "sensor_msgs/msg/Image", image))
            messages.append((stamp + TRANSPORT_DELAY_S, f"/cameras/{camera}/camera_info", "sensor_msgs/msg/CameraInfo", info))
        pose_stamp = start + i / fps
        messages.append((pose_stamp + 0.001, "/ee_pose", "geometry_msgs/msg/PoseStamped", conv.pose_msg(pose_stamp, POSE_AT(i))))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for log_time, topic, msgtype, msg in sorted(messages, key=lambda m: m[0]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=typestore)
            writer.write(connections[topic], int(log_time * 1e9), serialize_message(msg))
    return episode
