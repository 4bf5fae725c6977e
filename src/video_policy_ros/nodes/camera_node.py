"""camera node: one real camera → /cameras/<name>/image_raw + camera_info.

Frames are read in a thread of their own (reads block at the camera's rate). When
the camera disappears, the node reports it on /diagnostics and keeps retrying;
the inference node sees stale images and stops requesting chunks.
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from video_policy_ros.nodes.base import StackNode
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.sensors.calibration import Intrinsics, load_camera_info
from video_policy_ros.sensors.camera import CameraError, build_camera


class CameraNode(StackNode):
    def __init__(self, config: CameraDriverConfig | None = None, **node_kwargs):
        name = config.name if config else "camera"
        super().__init__(f"camera_{name}", **node_kwargs)
        self.config = config or load_node_config(self, "camera", CameraDriverConfig, ("name", "device", "calibration_file"))
        c = self.config
        self.intrinsics = (
            load_camera_info(c.calibration_file) if c.calibration_file else Intrinsics.pinhole(c.width, c.height)
        )
        self._image_pub = self.create_publisher(Image, f"/cameras/{c.name}/image_raw", qos_profile_sensor_data)
        self._info_pub = self.create_publisher(CameraInfo, f"/cameras/{c.name}/camera_info", qos_profile_sensor_data)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.camera = build_camera(c)
        self.camera.connect()  # fail at start-up with a clear error if the device is absent
        self._problem: str | None = None
        self._frames = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"camera-{c.name}", daemon=True)
        self._thread.start()
        self.create_timer(1.0, self._publish_diagnostics)

    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.camera.read()
            except CameraError as exc:
                self._problem = str(exc)
                self.get_logger().error(f"{exc}; retrying every {self.config.reconnect_period_s} s", throttle_duration_sec=10.0)
                self.camera.disconnect()
                self._stop.wait(self.config.reconnect_period_s)
                try:
                    self.camera.connect()
                except CameraError:
                    continue
                continue
            self._problem = None
            self._image_pub.publish(conv.image_to_msg(frame))
            i = self.intrinsics
            self._info_pub.publish(conv.camera_info_msg(frame.camera, frame.stamp, i.width, i.height, i.k, i.d))
            self._frames += 1

    def _publish_diagnostics(self) -> None:
        level = "error" if self._problem else "ok"
        status = conv.diagnostic_status(
            f"camera_{self.config.name}", str(self.config.device), level, self._problem or "streaming",
            {"fps": self._frames},
        )
        self._frames = 0
        self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.camera.disconnect()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)
