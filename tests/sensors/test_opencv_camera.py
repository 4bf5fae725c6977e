"""The OpenCV backend, for real: cv2.VideoCapture reads a video file written in tmp_path."""

from __future__ import annotations

import time

import numpy as np
import pytest

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.sensors.camera import CameraError, build_camera

RED, GREEN, BLUE = (220, 20, 20), (20, 220, 20), (20, 20, 220)


def camera_config(device, **overrides) -> CameraDriverConfig:
    values = {"name": "front", "device": str(device), "width": 64, "height": 48, **overrides}
    return CameraDriverConfig(**values)


def dominant_channel(image: np.ndarray) -> int:
    return int(np.argmax(image.reshape(-1, 3).mean(axis=0)))


def test_frames_are_rgb_with_the_configured_shape(video_file, video_size):
    path = video_file([RED, GREEN, BLUE])
    width, height = video_size
    with build_camera(camera_config(path, width=width, height=height, fps=200.0)) as camera:
        frames = [camera.read() for _ in range(3)]
    assert [f.image.shape for f in frames] == [(height, width, 3)] * 3
    assert all(f.image.dtype == np.uint8 and f.camera == "front" for f in frames)
    # Frame 0 was written red: index 0 of an rgb8 image must be the brightest channel.
    assert [dominant_channel(f.image) for f in frames] == [0, 1, 2]


def test_frames_are_resized_to_the_configured_size(video_file):
    path = video_file([RED])
    with build_camera(camera_config(path, width=32, height=24, fps=200.0)) as camera:
        assert camera.read().image.shape == (24, 32, 3)


def test_a_video_file_is_paced_at_the_configured_fps_with_increasing_capture_stamps(video_file):
    fps = 50.0
    path = video_file([RED] * 12)
    with build_camera(camera_config(path, fps=fps)) as camera:
        before = time.time()
        stamps = [camera.read().stamp for _ in range(11)]
    intervals = np.diff(stamps)
    assert before <= stamps[0] <= time.time()
    assert np.all(intervals > 0)
    # Reading a file unpaced takes well under a millisecond per frame.
    assert 0.9 / fps <= intervals.mean() <= 2.0 / fps


def test_the_end_of_a_file_is_a_camera_error(video_file):
    with build_camera(camera_config(video_file([RED]), fps=200.0)) as camera:
        camera.read()
        with pytest.raises(CameraError, match="stopped delivering frames"):
            camera.read()


def test_a_missing_device_names_the_device_and_what_to_check(tmp_path):
    missing = tmp_path / "no_such_camera.avi"
    with pytest.raises(CameraError) as error:
        build_camera(camera_config(missing)).connect()
    message = str(error.value)
    assert str(missing) in message and "'front'" in message
    assert "check" in message and "permissions" in message


def test_read_before_connect_is_a_camera_error(video_file):
    with pytest.raises(CameraError, match="before connect"):
        build_camera(camera_config(video_file([RED]))).read()
