"""camera node: one real camera → /cameras/<name>/image_raw + camera_info (+ aligned depth, + pose).

Frames are read in a thread of their own (reads block at the camera's rate). When
the camera disappears, the node reports it on /diagnostics at once (and every second
while it lasts), logs it once and keeps reconnecting; the inference node sees stale
images and stops requesting chunks. A device that is absent at start-up is a
configuration error and ends the node with a message saying what to check.

When the calibration file holds a hand-eye result, the camera's pose is published once,
latched, on /cameras/<name>/pose (geometry_msgs/PoseStamped: the optical frame in
``fr3_link0`` for a static camera, in ``fr3_hand_tcp`` for a camera on the hand).
"""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.errors import StackError
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.camera_topics import CameraTopics
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.nodes.qos import LATCHED_QOS
from video_policy_ros.sensors.calibration import intrinsics_for, load_extrinsics
from video_policy_ros.sensors.camera import CameraError, build_camera
from video_policy_ros.types import CameraFrame

DIAGNOSTICS_PERIOD_S = 1.0


class CameraNode(StackNode):
    def __init__(self, config: CameraDriverConfig | None = None, **node_kwargs):
        super().__init__(f"camera_{config.name}" if config else "camera", **node_kwargs)
        self.config = config or load_node_config(self, "camera", CameraDriverConfig)
        c = self.config
        topic = f"/cameras/{c.name}"
        self._topics = CameraTopics(self, c.name, c.image_transport, c.jpeg_quality)
        self._depth_pub = (
            self.create_publisher(Image, f"{topic}/aligned_depth_to_color/image_raw", qos_profile_sensor_data) if c.depth else None
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.camera = build_camera(c)
        self._fatal: StackError | None = None
        self._publish_pose()
        self._problem: str | None = None
        self._diag_lock = threading.Lock()  # the timer and the capture thread both report
        self._frames = 0
        self._started = self._frames_since = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._capture_loop, name=f"camera-{c.name}", daemon=True)
        self._thread.start()
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)

    def _publish_pose(self) -> None:
        extrinsics = load_extrinsics(self.config.calibration_file) if self.config.calibration_file else None
        if extrinsics is None:
            return
        self._pose_pub = self.create_publisher(PoseStamped, f"/cameras/{self.config.name}/pose", LATCHED_QOS)
        self._pose_pub.publish(conv.pose_msg(time.time(), extrinsics.pose, extrinsics.parent_frame))

    def _camera_info(self) -> CameraInfo:
        c = self.config
        i = intrinsics_for(c, self.camera.device_intrinsics())
        info = conv.camera_info_msg(c.name, 0.0, i.width, i.height, i.k, i.d)  # only the stamp changes per frame
        info.distortion_model = i.distortion_model
        return info

    def _capture_loop(self) -> None:
        # The camera may not be there yet (launch starts everything at once, a USB camera enumerates
        # late): retry like after a disconnect; the diagnostics timer gives up after connect_timeout_s.
        connected = False
        try:
            while not self._stop.is_set():
                try:
                    if not connected:
                        self.camera.connect()
                        connected = True
                        if self._topics.info is None:  # from the device's intrinsics, once it has been opened
                            self._topics.info = self._camera_info()
                    frame = self.camera.read()
                except StackError as exc:
                    if not isinstance(exc, CameraError):  # e.g. a calibration file that does not fit: no retry helps
                        self._fatal = exc
                        return
                    self.camera.disconnect()
                    connected = False
                    self._set_problem(str(exc))
                    self._stop.wait(self.config.reconnect_period_s)
                    continue
                self._set_problem(None)
                self._publish_frame(frame)
        finally:
            # Released here, by the thread that reads: releasing it from close() could race a blocked read.
            self.camera.disconnect()

    def _publish_frame(self, frame: CameraFrame) -> None:
        self._topics.publish(frame)
        depth = self.camera.depth()
        if self._depth_pub is not None and depth is not None:
            self._depth_pub.publish(conv.depth_to_msg(depth))
        with self._diag_lock:
            self._frames += 1

    def _set_problem(self, problem: str | None) -> None:
        """Report a change of state at once, and log it once."""
        if problem == self._problem:
            return
        self._problem = problem
        if problem:
            self.get_logger().error(f"{problem}; reconnecting every {self.config.reconnect_period_s} s")
        else:
            self.get_logger().info(f"camera '{self.config.name}' is streaming")
        self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        if self._fatal is not None:
            raise self._fatal  # run_node prints it as one "error:" line and exits 2
        waited = time.monotonic() - self._started
        if self._topics.info is None and self._problem and waited > self.config.connect_timeout_s:
            raise CameraError(f"{self._problem} (gave up after connect_timeout_s = {self.config.connect_timeout_s:g} s)")
        with self._diag_lock:
            now = time.monotonic()
            fps = self._frames / max(now - self._frames_since, 1e-6)
            self._frames, self._frames_since = 0, now
            problem = self._problem
            status = conv.diagnostic_status(
                f"camera_{self.config.name}", str(self.config.device), "error" if problem else "ok",
                problem or "streaming", {"fps": f"{fps:.1f}", "backend": self.config.backend},
            )
            self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0 + self.config.frame_timeout_s)


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args)
