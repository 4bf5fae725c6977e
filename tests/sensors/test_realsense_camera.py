"""The RealSense backend and camera node on librealsense recordings of a software device (no hardware)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.nodes.camera_node import CameraNode
from video_policy_ros.nodes.conversions import from_time
from video_policy_ros.sensors.camera import CameraError, build_camera

from .software_realsense import COEFFS, K, frames_at, record
from .test_camera_node import Probe


def realsense_config(device, **overrides) -> CameraDriverConfig:
    values = {"name": "wrist", "backend": "realsense", "device": str(device), "width": 64, "height": 48, "fps": 30.0,
              "reconnect_period_s": 0.1, "frame_timeout_s": 0.5, **overrides}
    return CameraDriverConfig(**values)


def assert_aligned_depth(depth: np.ndarray, depth_mm: int) -> None:
    """Aligning a distorted depth image onto colour leaves a few holes (0); the rest keeps its value."""
    measured = depth[depth > 0]
    assert measured.size >= 0.9 * depth.size and np.all(measured == depth_mm)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """(recording path, the frames it holds)."""
    frames = frames_at(12)
    return record(tmp_path_factory.mktemp("realsense") / "camera.db3", frames), frames


def read_until_the_end(camera) -> list:
    """(frame, depth) pairs until the recording ends. Playback is real time: a slow reader on a
    loaded machine misses frames, as it would from a live camera, so not every frame must arrive."""
    read = []
    while True:
        try:
            read.append((camera.read(), camera.depth()))
        except CameraError:
            return read


def test_frames_are_rgb_stamped_at_the_exposure_with_aligned_depth_and_device_intrinsics(recorded):
    path, frames = recorded
    with build_camera(realsense_config(path, depth=True)) as camera:
        intrinsics = camera.device_intrinsics()
        read = read_until_the_end(camera)
    np.testing.assert_allclose(intrinsics.k, K)
    assert intrinsics.d == pytest.approx(COEFFS) and intrinsics.distortion_model == "plumb_bob"
    assert len(read) >= len(frames) // 2
    by_stamp = {round(f.exposure_stamp, 6): f for f in frames}
    for frame, depth in read:
        # The device's time marks the readout; the metadata says the exposure's middle was 8 ms earlier.
        recorded_frame = by_stamp[round(frame.stamp, 6)]  # KeyError: the stamp is not that frame's exposure time
        np.testing.assert_array_equal(frame.image, recorded_frame.image)
        assert frame.stamp < recorded_frame.timestamp_ms * 1e-3
        assert depth.stamp == frame.stamp and depth.depth_scale_m == pytest.approx(0.001)
        assert_aligned_depth(depth.depth, recorded_frame.depth_mm)
    assert [f.stamp for f, _ in read] == sorted(f.stamp for f, _ in read)


def test_without_depth_no_depth_frame_is_produced(recorded):
    with build_camera(realsense_config(recorded[0])) as camera:
        camera.read()
        assert camera.depth() is None


def test_the_end_of_a_recording_is_a_camera_error(recorded):
    path, frames = recorded
    with build_camera(realsense_config(path)) as camera:
        with pytest.raises(CameraError, match="stopped delivering frames for 0.5 s"):
            for _ in range(len(frames) + 1):
                camera.read()


def test_an_absent_serial_number_names_what_was_found_and_what_to_check():
    with pytest.raises(CameraError, match=r"'123'.*no RealSense with that serial number.*found: .*check the USB"):
        build_camera(realsense_config("123")).connect()


def test_an_unsupported_resolution_names_it(recorded):
    with pytest.raises(CameraError, match=r"at 640x480 30 fps.*check the resolution"):
        build_camera(realsense_config(recorded[0], width=640, height=480)).connect()


def test_node_publishes_frames_exposure_stamps_intrinsics_and_aligned_depth(ros_graph, recorded):
    path, frames = recorded
    probe = Probe(ros_graph, "wrist", depth=True)
    ros_graph.add(CameraNode(realsense_config(path, depth=True), context=ros_graph.context))
    assert ros_graph.spin_until(lambda: len(probe.images) >= 5 and len(probe.depths) >= 5, timeout_s=10.0)

    expected = {round(f.exposure_stamp, 6): f for f in frames}
    for image in probe.images:
        assert image.header.frame_id == "wrist_color_optical_frame" and image.encoding == "rgb8"
        recorded_frame = expected[round(from_time(image.header.stamp), 6)]  # KeyError: a stamp that is no exposure time
        np.testing.assert_array_equal(np.frombuffer(image.data, np.uint8).reshape(48, 64, 3), recorded_frame.image)
    info = probe.infos[-1]
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), K)
    assert list(info.d) == pytest.approx(COEFFS) and info.header.frame_id == "wrist_color_optical_frame"
    depth = probe.depths[-1]
    assert (depth.encoding, depth.header.frame_id) == ("16UC1", "wrist_color_optical_frame")
    assert_aligned_depth(np.frombuffer(depth.data, np.uint16), expected[round(from_time(depth.header.stamp), 6)].depth_mm)


def test_node_reports_a_removed_device_and_reconnects_when_it_is_back(ros_graph, recorded, tmp_path):
    """Removing the recording is unplugging: frames stop, reconnects fail; putting it back is replugging."""
    path = shutil.copy(recorded[0], tmp_path / "camera.db3")
    probe = Probe(ros_graph, "wrist")
    ros_graph.add(CameraNode(realsense_config(path), context=ros_graph.context))
    assert ros_graph.spin_until(lambda: probe.images, timeout_s=10.0)

    (tmp_path / "camera.db3").unlink()
    assert ros_graph.spin_until(lambda: probe.has_status(DiagnosticStatus.ERROR, "recording not found"), timeout_s=10.0)
    error = next(s for s in probe.statuses if s.level == DiagnosticStatus.ERROR and "not found" in s.message)
    assert error.name == "camera_wrist" and "check the path" in error.message

    images_while_removed = len(probe.images)
    probe.statuses.clear()
    shutil.copy(recorded[0], tmp_path / "camera.db3")
    assert ros_graph.spin_until(
        lambda: probe.has_status(DiagnosticStatus.OK) and len(probe.images) > images_while_removed, timeout_s=10.0
    )
