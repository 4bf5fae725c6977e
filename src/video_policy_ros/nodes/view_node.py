"""view node and ``video-policy view``: the operator's browser view of the live graph or of a recorded bag.

The node subscribes to the topic contract and hands each message to ``ViewFeed``, which turns
it into plain values for ``view.operator_view.OperatorView``. A bag goes through the same
``ViewFeed`` (rosbags' decoded messages have the same fields), so both give the same page.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from video_policy_ros.config import ViewConfig
from video_policy_ros.errors import StackError
from video_policy_ros.nodes import conversions as conv

log = logging.getLogger(__name__)

CHUNK_TOPIC, POSE_TOPIC, DIAGNOSTICS_TOPIC = "/policy/action_chunk", "/ee_pose", "/diagnostics"
LEVEL_NAMES = {0: "ok", 1: "warn", 2: "error", 3: "stale"}


class ViewFeed:
    """Topic + message (rclpy's or rosbags') → the view's calls."""

    def __init__(self, view, config: ViewConfig):
        from video_policy_ros.data.converter import decode_image

        self.view, self.config = view, config
        self._decode = decode_image
        self._last_pose = -math.inf
        self.dropped: dict[str, str] = {}  # topic → why its last message was not shown

    def topics(self) -> list[str]:
        per_camera = [f"{prefix}/{camera}{suffix}" for camera in self.config.cameras
                      for prefix, suffix in (("/cameras", "/image_raw"), ("/cameras", "/image_raw/compressed"),
                                             ("/policy/predicted_video", ""))]
        return [*per_camera, CHUNK_TOPIC, POSE_TOPIC, DIAGNOSTICS_TOPIC]

    def handle(self, topic: str, msg: Any) -> None:
        try:
            self._route(topic, msg)
        except (StackError, ValueError, AttributeError, IndexError) as exc:  # malformed: shown nowhere, said once
            if self.dropped.get(topic) != str(exc):
                log.warning("%s: message not shown: %s", topic, exc)
            self.dropped[topic] = str(exc)

    def _route(self, topic: str, msg: Any) -> None:
        parts = topic.split("/")
        if parts[1] == "cameras":
            self.view.camera(parts[2], conv.from_time(msg.header.stamp), self._decode(msg, topic))
        elif topic.startswith("/policy/predicted_video/"):
            self.view.predicted_video(parts[3], conv.from_time(msg.header.stamp), self._decode(msg, topic))
        elif topic == CHUNK_TOPIC:
            chunk = conv.chunk_from_msgs(msg, None, hold_gripper=0.0)  # the controller's reading of it
            self.view.chunk(chunk.stamp, chunk.poses[:, :3])
        elif topic == POSE_TOPIC:
            stamp = conv.from_time(msg.header.stamp)
            if stamp - self._last_pose >= 1.0 / self.config.pose_rate_hz:
                self._last_pose = stamp
                p = msg.pose.position
                self.view.tcp(stamp, np.array([p.x, p.y, p.z]))
        elif topic == DIAGNOSTICS_TOPIC:
            stamp = conv.from_time(msg.header.stamp)
            for status in msg.status:
                level = status.level if isinstance(status.level, int) else int.from_bytes(status.level, "little")
                self.view.diagnostics(stamp, status.name, LEVEL_NAMES.get(level, "error"), status.message,
                                      {kv.key: kv.value for kv in status.values})


def _start_view(config: ViewConfig, application: str):
    """The recording, its servers and the view; returns (feed, page address)."""
    import rerun as rr

    from video_policy_ros.view.operator_view import OperatorView, serve

    recording = rr.RecordingStream(application, make_default=False,
                                   batcher_config=rr.ChunkBatcherConfig(flush_tick=config.flush_interval_s))
    try:
        page = serve(recording, list(config.cameras), config.web_port, config.grpc_port, config.memory_limit)
    except Exception as exc:  # rerun raises RuntimeError/OSError variants for a port in use
        raise StackError(f"cannot serve the view on ports {config.web_port}/{config.grpc_port} ({exc}); "
                         "choose others with --port/--grpc-port (or web_port/grpc_port in view.yaml)") from None
    view = OperatorView(recording, list(config.cameras), config.executed_path_s, config.camera_rate_hz, config.jpeg_quality)
    return ViewFeed(view, config), page


def _node_class():
    from rclpy.qos import qos_profile_sensor_data

    from video_policy_ros.nodes.base import StackNode
    from video_policy_ros.nodes.params import load_node_config

    class ViewNode(StackNode):
        def __init__(self, config: ViewConfig | None = None, **node_kwargs):
            super().__init__("view", **node_kwargs)
            self.config = config or load_node_config(self, "view", ViewConfig)
            self.feed, page = _start_view(self.config, "video_policy_ros")
            for topic in self.feed.topics():
                msg_type = _message_type(topic)
                qos = qos_profile_sensor_data if "image" in topic or "predicted_video" in topic else 10
                self.create_subscription(msg_type, topic, lambda msg, topic=topic: self.feed.handle(topic, msg), qos)
            self.get_logger().info(f"operator view: open {page}")
            print(f"view: {page}", flush=True)

    return ViewNode


def _message_type(topic: str):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CompressedImage, Image
    from trajectory_msgs.msg import MultiDOFJointTrajectory

    if topic.endswith("/compressed"):
        return CompressedImage
    return {CHUNK_TOPIC: MultiDOFJointTrajectory, POSE_TOPIC: PoseStamped, DIAGNOSTICS_TOPIC: DiagnosticArray}.get(topic, Image)


def main(args: list[str] | None = None) -> int:
    from video_policy_ros.nodes.params import run_node

    return run_node(_node_class(), args)


# ---------------------------------------------------------------- video-policy view


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, help="show a recorded bag (folder or .mcap) instead of the live graph")
    parser.add_argument("--config", type=Path, help="view YAML (default: the installed view.yaml)")
    parser.add_argument("--cameras", help="comma-separated camera names (default: the YAML's)")
    parser.add_argument("--port", type=int, dest="web_port", help="the page's port (default 9090)")
    parser.add_argument("--grpc-port", type=int, help="Rerun's log server port (default 9876)")


def run(args: argparse.Namespace) -> int:
    from video_policy_ros.config import default_config_path, load_yaml
    from video_policy_ros.nodes.signals import take_shutdown_signals

    shutdown = take_shutdown_signals()  # before Rerun starts its threads: they inherit the signal mask

    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()] if args.cameras else None
    config = load_yaml(ViewConfig, args.config or default_config_path("view"),
                       {"cameras": cameras, "web_port": args.web_port, "grpc_port": args.grpc_port})
    if args.bag is None:
        from video_policy_ros.nodes.params import run_node

        node_class = _node_class()
        return run_node(lambda: node_class(config))
    return _show_bag(args.bag, config, shutdown)


def _show_bag(path: Path, config: ViewConfig, shutdown) -> int:
    """The bag's messages in receive order through the same feed, then serve until Ctrl-C."""
    from video_policy_ros.data.bag_reader import read_bag

    bag = read_bag(path)  # BagReadError: one line from cli.main
    for warning in bag.warnings:
        print(f"warning: {warning}", flush=True)
    feed, page = _start_view(config, "video_policy_ros bag")
    shown = set(feed.topics())
    messages = sorted(((ns, topic, msg) for topic, entries in bag.topics.items() if topic in shown
                       for ns, msg in entries), key=lambda entry: entry[0])
    if not messages:
        raise StackError(f"{path}: none of the view's topics were recorded ({', '.join(sorted(shown))}); "
                         f"the bag has {', '.join(sorted(bag.topics))}")
    for _, topic, msg in messages:
        feed.handle(topic, msg)
    span = (messages[-1][0] - messages[0][0]) * 1e-9
    print(f"view: {page}\n{len(messages)} messages, {span:.1f} s of {path}"
          f"{' (truncated: the recorder was stopped mid-episode)' if bag.truncated else ''}; Ctrl-C to stop", flush=True)
    while not shutdown.wait(0.2):
        pass
    return 0
