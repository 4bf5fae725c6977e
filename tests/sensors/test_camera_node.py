"""The camera node over real rclpy, reading a real video file through OpenCV."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.nodes.camera_node import CameraNode
from video_policy_ros.nodes.conversions import from_time
from video_policy_ros.sensors.calibration import Intrinsics, save_camera_info
from video_policy_ros.sensors.camera import CameraError

RED = (220, 20, 20)


class Probe:
    """Records what the camera node publishes on the contract topics."""

    def __init__(self, graph, camera: str, depth: bool = False):
        node = graph.add(rclpy.create_node("probe", context=graph.context))
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.depths: list[Image] = []
        self.statuses: list[DiagnosticStatus] = []
        node.create_subscription(Image, f"/cameras/{camera}/image_raw", self.images.append, qos_profile_sensor_data)
        node.create_subscription(CameraInfo, f"/cameras/{camera}/camera_info", self.infos.append, qos_profile_sensor_data)
        node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.statuses.extend(m.status), 10)
        if depth:
            topic = f"/cameras/{camera}/aligned_depth_to_color/image_raw"
            node.create_subscription(Image, topic, self.depths.append, qos_profile_sensor_data)

    def has_status(self, level: bytes, text: str = "") -> bool:
        return any(s.level == level and text in s.message for s in self.statuses)


def start_camera(graph, device, **overrides) -> CameraNode:
    values = {"name": "front", "device": str(device), "width": 64, "height": 48, "fps": 50.0,
              "reconnect_period_s": 0.1, **overrides}
    return graph.add(CameraNode(CameraDriverConfig(**values), context=graph.context))


def test_publishes_rgb8_images_and_camera_info_with_capture_stamps(ros_graph, video_file):
    probe = Probe(ros_graph, "front")
    started = time.time()
    start_camera(ros_graph, video_file([RED] * 50))
    assert ros_graph.spin_until(lambda: len(probe.images) >= 5 and len(probe.infos) >= 5)

    image = probe.images[-1]
    assert (image.encoding, image.width, image.height, image.step) == ("rgb8", 64, 48, 64 * 3)
    pixels = np.frombuffer(image.data, np.uint8).reshape(48, 64, 3)
    assert np.argmax(pixels.reshape(-1, 3).mean(axis=0)) == 0, "red was written: channel 0 must dominate in rgb8"

    stamps = [from_time(m.header.stamp) for m in probe.images]
    assert started <= stamps[0] and stamps[-1] <= time.time()
    assert np.all(np.diff(stamps) > 0)
    info = probe.infos[-1]
    assert from_time(info.header.stamp) in stamps, "camera_info carries the stamp of its image"
    assert info.header.frame_id == image.header.frame_id
    assert (info.width, info.height) == (64, 48) and info.k[0] > 0


def test_reports_a_lost_camera_keeps_retrying_and_recovers(ros_graph, video_file):
    probe = Probe(ros_graph, "front")
    path = video_file([RED] * 5)
    start_camera(ros_graph, path)
    assert ros_graph.spin_until(lambda: probe.images)

    path.unlink()  # the end of the file, then every reconnect fails until it is back
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.ERROR, "cannot open device"))
    error = next(s for s in probe.statuses if s.level == DiagnosticStatus.ERROR and "cannot open" in s.message)
    assert error.name == "camera_front" and str(path) in error.message and "check" in error.message
    ros_graph.spin_until(lambda: False, timeout_s=0.3)  # several failed reconnects, then the device is back

    images_while_lost = len(probe.images)
    probe.statuses.clear()
    video_file([RED] * 5)
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.OK) and len(probe.images) > images_while_lost)


def test_the_end_of_a_video_file_is_reported_and_the_file_replays(ros_graph, video_file):
    probe = Probe(ros_graph, "front")
    start_camera(ros_graph, video_file([RED] * 3))
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.ERROR, "stopped delivering frames"))
    assert ros_graph.spin_until(lambda: probe.statuses[-1].level == DiagnosticStatus.OK and len(probe.images) > 3)


def test_a_camera_absent_at_start_up_is_waited_for_then_fails_with_what_to_check(ros_graph, tmp_path):
    probe = Probe(ros_graph, "front")
    start_camera(ros_graph, tmp_path / "no_camera.avi", connect_timeout_s=1.5)
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.ERROR, "cannot open device"))
    with pytest.raises(CameraError, match="cannot open device .*no_camera.avi.*check.*gave up after"):
        ros_graph.spin_until(lambda: False, timeout_s=5.0)


def test_a_camera_that_appears_after_start_up_is_picked_up(ros_graph, video_file, tmp_path):
    probe = Probe(ros_graph, "front")
    late = tmp_path / "late.avi"
    start_camera(ros_graph, late)
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.ERROR, "cannot open device"))
    video_file([RED] * 30).rename(late)  # plugged in
    assert ros_graph.spin_until(lambda: len(probe.images) > 3 and len(probe.infos) > 3, timeout_s=10.0)


def test_camera_info_comes_from_the_calibration_file(ros_graph, video_file, tmp_path):
    k = np.array([[70.0, 0.0, 31.5], [0.0, 71.0, 23.5], [0.0, 0.0, 1.0]])
    calibration = tmp_path / "front.yaml"
    save_camera_info(calibration, Intrinsics(64, 48, k, [0.1, -0.2, 0.0, 0.0, 0.0]), "front")
    probe = Probe(ros_graph, "front")
    start_camera(ros_graph, video_file([RED] * 50), calibration_file=calibration)
    assert ros_graph.spin_until(lambda: probe.infos)
    np.testing.assert_allclose(np.reshape(probe.infos[-1].k, (3, 3)), k)
    assert list(probe.infos[-1].d) == pytest.approx([0.1, -0.2, 0.0, 0.0, 0.0])


def test_a_hand_eye_result_is_published_latched_on_the_pose_topic(ros_graph, video_file, tmp_path):
    from geometry_msgs.msg import PoseStamped

    from video_policy_ros.nodes.qos import LATCHED_QOS
    from video_policy_ros.sensors.calibration import CameraExtrinsics, save_extrinsics

    calibration = tmp_path / "front.yaml"
    rotation = np.array([0.1, 0.7, -0.1, 0.7])
    pose = np.concatenate([[1.1, 0.3, 0.7], rotation / np.linalg.norm(rotation)])
    save_extrinsics(calibration, CameraExtrinsics(pose, "fr3_link0"), "front", Intrinsics.pinhole(64, 48))
    start_camera(ros_graph, video_file([RED] * 50), calibration_file=calibration)
    ros_graph.spin_until(lambda: False, timeout_s=0.3)  # published before anyone listens: latched
    poses: list[PoseStamped] = []
    probe = ros_graph.add(rclpy.create_node("late_listener", context=ros_graph.context))
    probe.create_subscription(PoseStamped, "/cameras/front/pose", poses.append, LATCHED_QOS)
    assert ros_graph.spin_until(lambda: poses)
    assert poses[0].header.frame_id == "fr3_link0"
    p, o = poses[0].pose.position, poses[0].pose.orientation
    np.testing.assert_allclose([p.x, p.y, p.z, o.x, o.y, o.z, o.w], pose)
