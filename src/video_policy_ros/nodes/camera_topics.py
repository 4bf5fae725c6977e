"""The topics of one camera, as the sim world and the camera driver publish them.

``/cameras/<name>/image_raw`` and ``camera_info`` always; with ``image_transport: compressed`` also
``image_raw/compressed`` (JPEG, image_transport naming), encoded only while someone subscribes: a raw
320x240 camera at 15 Hz is ~28 Mbit/s, too much for a shared link to an inference host.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.types import CameraFrame


class CameraTopics:
    def __init__(self, node: Node, name: str, transport: str, jpeg_quality: int):
        topic = f"/cameras/{name}"
        self._image = node.create_publisher(Image, f"{topic}/image_raw", qos_profile_sensor_data)
        self._info = node.create_publisher(CameraInfo, f"{topic}/camera_info", qos_profile_sensor_data)
        self._compressed = (node.create_publisher(CompressedImage, f"{topic}/image_raw/compressed", qos_profile_sensor_data)
                            if transport == "compressed" else None)
        self._jpeg_quality = jpeg_quality
        self.info: CameraInfo | None = None  # set by the node once known; only its stamp changes per frame

    def publish(self, frame: CameraFrame) -> None:
        self._image.publish(conv.image_to_msg(frame))
        if self._compressed is not None and self._compressed.get_subscription_count() > 0:
            self._compressed.publish(conv.compressed_image_msg(frame, "jpeg", self._jpeg_quality))
        if self.info is not None:
            self.info.header.stamp = conv.to_time(frame.stamp)
            self._info.publish(self.info)
