"""A state message that cannot go out is reported, not latched as a robot error: a real controller node (rclpy,
its control loop connecting to an address with no robot) whose publisher fails as Fast DDS does under load."""

from __future__ import annotations

import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy._rclpy_pybind11 import RCLError
from rclpy.executors import SingleThreadedExecutor

from video_policy_ros.config import ControllerConfig
from video_policy_ros.nodes.base import private_context
from video_policy_ros.nodes.controller_node import ControllerNode


class FailingPublisher:
    topic_name = "/ee_pose"

    def publish(self, msg) -> None:
        raise RCLError("Failed to publish: cannot publish data, at /project/src/rmw_publish.cpp:68")


def test_a_failed_publish_is_counted_on_diagnostics_and_stops_nothing():
    context = private_context()
    node = ControllerNode(ControllerConfig(robot_ip="127.0.0.77"), context=context)
    listener = rclpy.create_node("diagnostics_listener", context=context)
    received: list[dict[str, str]] = []
    listener.create_subscription(DiagnosticArray, "/diagnostics", lambda msg: received.extend(
        {kv.key: kv.value for kv in status.values} for status in msg.status if status.name.startswith("controller")), 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(listener)
    try:
        node._publish(FailingPublisher(), PoseStamped())
        node._publish(FailingPublisher(), PoseStamped())
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not any(v.get("publish_failures") == "2" for v in received):
            executor.spin_once(timeout_sec=0.1)
        reported = [v for v in received if v.get("publish_failures") == "2"]
        assert reported, f"no /diagnostics with publish_failures 2: {received[-1:]}"
        assert "/ee_pose: Failed to publish: cannot publish data" in reported[-1]["last_publish_failure"]
        assert node.loop.fatal is None and not node.loop.watchdog.stop_message
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        listener.destroy_node()
        rclpy.shutdown(context=context)
