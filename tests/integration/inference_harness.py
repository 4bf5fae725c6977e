"""An InferenceNode beside a feeder node over real rclpy: the feeder plays the cameras and the
controller's /ee_pose at a camera's pace and publishes the task; tests subscribe through it."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String

from video_policy_ros.config import InferenceConfig
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.inference_node import InferenceNode
from video_policy_ros.nodes.qos import TASK_QOS
from video_policy_ros.types import CameraFrame
from video_policy_ros.nodes.base import private_context

CAMERA_PERIOD_S = 1 / 15  # flooding the node faster would starve the policy thread of the GIL
TCP = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


class InferenceHarness:
    def __init__(self, config: InferenceConfig, executor_type, pixel_value: int = 0):
        self.context = private_context()
        self.node = InferenceNode(config, context=self.context)
        self.feeder = rclpy.create_node("feeder", context=self.context)
        self.executor = executor_type(context=self.context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.feeder)
        self._images = {c: self.feeder.create_publisher(Image, f"/cameras/{c}/image_raw", qos_profile_sensor_data)
                        for c in config.cameras}
        self._pose = self.feeder.create_publisher(PoseStamped, "/ee_pose", 10)
        self.feeder.create_publisher(String, "/task", TASK_QOS).publish(String(data="touch the red cube"))
        self._image = np.full((48, 64, 3), pixel_value, np.uint8)
        self.sent_stamps: list[float] = []

    def feed_until(self, done: Callable[[], bool], timeout: float, each_period: Callable[[], None] = lambda: None) -> None:
        """Publish a frame per camera and a pose every camera period until ``done()`` or ``timeout``."""
        deadline = time.time() + timeout
        while not done() and time.time() < deadline:
            now = time.time()
            for camera, publisher in self._images.items():
                publisher.publish(conv.image_to_msg(CameraFrame(camera, now, self._image)))
            self.sent_stamps.append(now)
            self._pose.publish(conv.pose_msg(now, TCP))
            each_period()
            self.spin_for(CAMERA_PERIOD_S)

    def spin_for(self, seconds: float) -> None:
        end = time.time() + seconds
        while time.time() < end:
            self.executor.spin_once(timeout_sec=max(end - time.time(), 0.0))

    def close(self) -> None:
        self.node.close()
        self.executor.shutdown()
        self.node.destroy_node()
        self.feeder.destroy_node()
        rclpy.shutdown(context=self.context)
