"""recorder node: the contract topics → one rosbag2 bag (MCAP) per episode.

Records the cameras (raw, or JPEG/PNG as sensor_msgs/CompressedImage on
``image_raw/compressed``) with their camera_info, ``/joint_states``, ``/ee_pose``,
``/controller/command`` (when someone publishes it), ``/task``, ``/episode/events``, and what the
policy asked for and the nodes reported (action and gripper chunks, predicted video, ``/diagnostics``),
so that ``video-policy view --bag`` shows an episode as it was seen live.
Episodes start and end on ``/episode/events`` (the sim world publishes start and
success/failure) or by an operator: the services ``~/start``, ``~/stop``,
``~/discard`` (std_srvs/Trigger) and ``~/mark_success`` (std_srvs/SetBool: true =
success, false = failure), or the keyboard of ``video-policy record``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.qos import qos_profile_sensor_data
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from video_policy_ros.config import RecorderConfig
from video_policy_ros.data.image_codec import compressed_format
from video_policy_ros.data.events import EVENTS_TOPIC, parse_event
from video_policy_ros.data.recording import EpisodeRecorder
from video_policy_ros.errors import StackError
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.nodes.qos import EVENTS_QOS, TASK_QOS
from video_policy_ros.types import BASE_FRAME, FR3_ARM_JOINTS, TCP_FRAME

STATE_QOS = 100  # /joint_states and /ee_pose come at 200 Hz: keep a burst while the bag writes a chunk

# topic -> (message class, bag type name, QoS) of the topics recorded byte for byte.
RAW_TOPICS = {
    "/joint_states": (JointState, "sensor_msgs/msg/JointState", STATE_QOS),
    "/ee_pose": (PoseStamped, "geometry_msgs/msg/PoseStamped", STATE_QOS),
    "/controller/command": (TwistStamped, "geometry_msgs/msg/TwistStamped", STATE_QOS),
    # what the policy asked for and what every node said: `video-policy view --bag` shows them
    "/policy/action_chunk": (MultiDOFJointTrajectory, "trajectory_msgs/msg/MultiDOFJointTrajectory", 10),
    "/policy/gripper_chunk": (JointTrajectory, "trajectory_msgs/msg/JointTrajectory", 10),
    "/diagnostics": (DiagnosticArray, "diagnostic_msgs/msg/DiagnosticArray", 10),
}

KEYS = {"s": "start", "e": "stop", "y": "success", "n": "failure", "d": "discard"}
KEY_HELP = "keys: s start, e stop (end), y success, n failure, d discard, q quit"


def compress_image(msg: Image, camera: str, encoding: str, jpeg_quality: int) -> CompressedImage:
    """rgb8/bgr8 Image → CompressedImage; raises conversions.MessageError for other images."""
    compressed = conv.compressed_image_msg(conv.frame_from_msg(camera, msg), encoding, jpeg_quality)
    compressed.header, compressed.format = msg.header, compressed_format(msg.encoding, encoding)
    return compressed


class RecorderNode(StackNode):
    def __init__(self, config: RecorderConfig | None = None, **node_kwargs):
        super().__init__("recorder", **node_kwargs)
        self.config = c = config or load_node_config(self, "recorder", RecorderConfig)
        self._lock = threading.Lock()  # executor callbacks and the keyboard thread share the core
        self._events_pub = self.create_publisher(String, EVENTS_TOPIC, EVENTS_QOS)
        robot = {"model": "fr3", "robot_ip": c.robot_ip, "arm_joints": list(FR3_ARM_JOINTS),
                 "tcp_frame": TCP_FRAME, "base_frame": BASE_FRAME}
        self.core = EpisodeRecorder(
            c.output_dir, lambda event: serialize_message(String(data=json.dumps(event))), self._publish_event,
            chunk_compression=c.chunk_compression, chunk_period_s=c.chunk_period_s, stop_delay_s=c.stop_delay_s,
            robot=robot,
        )
        for topic, (msg_type, bag_type, qos) in RAW_TOPICS.items():
            self.create_subscription(msg_type, topic, self._raw_writer(topic, bag_type), qos, raw=True)
        for cam in c.cameras:
            image_topic = f"/cameras/{cam}/image_raw"
            if c.image_encoding == "raw":
                self.create_subscription(Image, image_topic, self._raw_writer(image_topic, "sensor_msgs/msg/Image"),
                                         qos_profile_sensor_data, raw=True)
            else:
                self.create_subscription(Image, image_topic, self._compressed_writer(cam),
                                         qos_profile_sensor_data)
            self.create_subscription(CameraInfo, f"/cameras/{cam}/camera_info", self._camera_info_writer(cam),
                                     qos_profile_sensor_data)
            video_topic = f"/policy/predicted_video/{cam}"
            self.create_subscription(Image, video_topic, self._raw_writer(video_topic, "sensor_msgs/msg/Image"),
                                     qos_profile_sensor_data, raw=True)
        self.create_subscription(String, "/task", self._on_task, TASK_QOS)
        self.create_subscription(String, EVENTS_TOPIC, self._on_event, EVENTS_QOS)
        for kind in ("start", "stop", "discard"):
            self.create_service(Trigger, f"~/{kind}", self._trigger_service(kind))
        self.create_service(SetBool, "~/mark_success", self._on_mark_success)
        self.create_timer(0.1, self._tick)
        self.get_logger().info(f"recording episodes into {c.output_dir.resolve()} (images: {c.image_encoding})")

    # ------------------------------------------------------------------ messages → bag

    def _raw_writer(self, topic: str, bag_type: str):
        def write(data: bytes) -> None:
            with self._core() as core:
                core.write(topic, bag_type, time.time_ns(), data)
        return write

    def _compressed_writer(self, camera: str):
        topic = f"/cameras/{camera}/image_raw/compressed"

        def write(msg: Image) -> None:
            if not self.core.recording:  # encoding costs CPU: only while an episode runs
                return
            try:
                compressed = compress_image(msg, camera, self.config.image_encoding, self.config.jpeg_quality)
            except conv.MessageError as exc:
                self.get_logger().warning(f"image not recorded: {exc}", throttle_duration_sec=5.0)
                return
            with self._core() as core:
                core.write(topic, "sensor_msgs/msg/CompressedImage", time.time_ns(), serialize_message(compressed))
        return write

    def _camera_info_writer(self, camera: str):
        topic = f"/cameras/{camera}/camera_info"

        def write(msg: CameraInfo) -> None:
            with self._core() as core:
                core.note_camera(camera, msg.width, msg.height, msg.k)
                core.write(topic, "sensor_msgs/msg/CameraInfo", time.time_ns(), serialize_message(msg))
        return write

    def _on_task(self, msg: String) -> None:
        with self._core() as core:
            core.note_task(msg.data, serialize_message(msg))

    def _on_event(self, msg: String) -> None:
        event = parse_event(msg.data)
        if event is None:
            self.get_logger().warning(f"ignored a malformed {EVENTS_TOPIC} message: {msg.data[:80]!r}")
        elif event.get("source") != "recorder":  # our own events were handled when they were made
            with self._core() as core:
                core.handle_event(event)

    # ------------------------------------------------------------------ operator

    def operator(self, kind: str, reason: str = "operator") -> tuple[bool, str]:
        """An operator's command; returns (accepted, what happened)."""
        with self._core() as core:
            if kind != "start" and not core.recording:
                return False, f"{kind} ignored: not recording (start an episode first)"
            core.operator(kind, reason)
            return True, f"{kind}: {core.info.name if core.info else 'episode closed'}"
        return False, f"{kind} failed: recording stopped (see the error above)"

    def _trigger_service(self, kind: str):
        def serve(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
            response.success, response.message = self.operator(kind, "service")
            return response
        return serve

    def _on_mark_success(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        response.success, response.message = self.operator("success" if request.data else "failure", "service")
        return response

    def _publish_event(self, event: dict) -> None:
        self._events_pub.publish(String(data=json.dumps(event)))

    def _tick(self) -> None:
        with self._core() as core:
            core.tick()

    @contextlib.contextmanager
    def _core(self) -> Iterator[EpisodeRecorder]:
        """The core, under the lock. A bag that cannot be written (disk full, folder gone) stops
        the node with the reason, logged once: what is on disk stays readable to its last chunk."""
        with self._lock:
            try:
                yield self.core
            except (OSError, StackError) as exc:
                if self.exit_code is None:
                    self.get_logger().fatal(f"recording failed, the recorder stops: {exc} "
                                            "(free disk space or choose another output_dir)")
                self.exit_code = 2

    def close(self) -> None:
        with self._core() as core:
            core.close()


def keyboard_loop(node: RecorderNode, keys: Iterable[str]) -> None:
    """Acts on key presses (or lines) until q or the end of input; then the node exits."""
    for text in keys:
        key = text.strip().lower()[:1]
        if key == "q":
            break
        if key in KEYS:
            print(node.operator(KEYS[key], "keyboard")[1], flush=True)
        elif key:
            print(KEY_HELP, flush=True)
    node.exit_code = 0


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


# ---------------------------------------------------------------- video-policy record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder for the episode bags (default: config/recorder.yaml)")
    parser.add_argument("--config", type=Path, help="recorder YAML (default: the installed recorder.yaml)")
    parser.add_argument("--image-encoding", choices=["raw", "jpeg", "png"])


def run(args: argparse.Namespace) -> int:
    import sys
    import termios
    import tty

    from video_policy_ros.config import default_config_path, load_yaml

    terminal = sys.stdin.isatty()
    saved = termios.tcgetattr(sys.stdin) if terminal else None
    # In a terminal a key acts at once (no Enter); piped input is read a line at a time.
    keys = iter(lambda: sys.stdin.read(1), "") if terminal else sys.stdin

    def build() -> RecorderNode:
        config = load_yaml(RecorderConfig, args.config or default_config_path("recorder"),
                           {"output_dir": args.out and args.out.resolve(), "image_encoding": args.image_encoding})
        node = RecorderNode(config)
        print(KEY_HELP, flush=True)
        if terminal:
            tty.setcbreak(sys.stdin)
        threading.Thread(target=keyboard_loop, args=(node, keys), name="keyboard", daemon=True).start()
        return node

    try:
        return run_node(build)
    finally:
        if saved is not None:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)
