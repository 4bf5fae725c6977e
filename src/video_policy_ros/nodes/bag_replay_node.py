"""bag_replay node: the camera topics of a recorded bag, published as if live, to drive the graph offline.

    ros2 run video_policy_ros bag_replay --ros-args -p bag:=data/episode_0003 -p extra_topics:="['/ee_pose', '/task']"

Messages keep their recorded topics, types and payloads; only header stamps move onto the
replay's clock (sensors/bag_replay.py). At the end of the bag the node exits 0, or starts
again with ``loop: true``.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import String

from video_policy_ros.config import BagReplayConfig, ConfigError
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.nodes.qos import TASK_QOS
from video_policy_ros.sensors.bag_replay import CAMERA_TOPIC, BagReplay, RecordedMessage

# The recorded types this node can publish: the topic contract's inputs to the inference node.
MESSAGE_TYPES = {
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CameraInfo": CameraInfo,
    "geometry_msgs/msg/PoseStamped": PoseStamped,
    "sensor_msgs/msg/JointState": JointState,
    "std_msgs/msg/String": String,
}


class BagReplayNode(StackNode):
    def __init__(self, config: BagReplayConfig | None = None, **node_kwargs):
        super().__init__("bag_replay", **node_kwargs)
        self.config = config or load_node_config(self, "bag_replay", BagReplayConfig)
        self.replay = BagReplay(self.config)
        unsupported = {t: m for t, m in self.replay.topics.items() if m not in MESSAGE_TYPES}
        if unsupported:
            raise ConfigError(f"bag_replay: cannot replay {unsupported}; supported types: {sorted(MESSAGE_TYPES)}")
        self._replay_publishers = {
            topic: self.create_publisher(MESSAGE_TYPES[msgtype], topic, self._qos(topic))
            for topic, msgtype in self.replay.topics.items()
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.published = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._replay_loop, name="bag-replay", daemon=True)
        self._thread.start()
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"replaying {sorted(self.replay.topics)} from {self.config.bag} at {self.config.rate:g}x")

    @staticmethod
    def _qos(topic: str):
        if CAMERA_TOPIC.match(topic):
            return qos_profile_sensor_data
        return TASK_QOS if topic == "/task" else 10

    def _replay_loop(self) -> None:
        while not self._stop.is_set():
            for recorded in self.replay.messages(sleep=self._stop.wait):
                if self._stop.is_set():
                    return
                self._publish(recorded)
            if not self.config.loop:
                self.get_logger().info(f"end of {self.config.bag}: {self.published} messages replayed")
                self.exit_code = 0
                return

    def _publish(self, recorded: RecordedMessage) -> None:
        msg = deserialize_message(recorded.data, MESSAGE_TYPES[recorded.msgtype])
        if hasattr(msg, "header"):
            msg.header.stamp = conv.to_time(self.replay.live_stamp(conv.from_time(msg.header.stamp)))
        self._replay_publishers[recorded.topic].publish(msg)
        self.published += 1

    def _publish_diagnostics(self) -> None:
        status = conv.diagnostic_status(
            "bag_replay", str(self.config.bag), "ok", "replaying", {"messages": self.published, "rate": self.config.rate}
        )
        self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.replay.close()


def main(args: list[str] | None = None) -> int:
    return run_node(BagReplayNode, args)
