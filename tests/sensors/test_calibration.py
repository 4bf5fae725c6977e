"""camera_info YAML: round trip, bad files, and the shipped sim calibrations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from video_policy_ros.config import CameraDriverConfig, ConfigError, SimWorldConfig
from video_policy_ros.sensors.calibration import (
    CameraExtrinsics,
    Intrinsics,
    intrinsics_for,
    load_camera_info,
    load_extrinsics,
    save_camera_info,
    save_extrinsics,
)
from video_policy_ros.sim.scene import camera_intrinsics

CALIBRATION_DIR = Path(__file__).resolve().parents[2] / "calibration"
CAMERA_INFO_KEYS = {
    "image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
    "distortion_coefficients", "rectification_matrix", "projection_matrix",
}


def calibrated() -> Intrinsics:
    k = np.array([[612.5, 0.0, 321.25], [0.0, 611.75, 238.5], [0.0, 0.0, 1.0]])
    return Intrinsics(640, 480, k, [0.11, -0.23, 0.001, -0.002, 0.05])


def test_save_then_load_round_trips(tmp_path):
    path = tmp_path / "front.yaml"
    save_camera_info(path, calibrated(), "front")
    loaded = load_camera_info(path)
    assert (loaded.width, loaded.height, loaded.d, loaded.distortion_model) == (640, 480, calibrated().d, "plumb_bob")
    np.testing.assert_array_equal(loaded.k, calibrated().k)


def test_saved_file_has_the_camera_calibration_layout(tmp_path):
    path = tmp_path / "front.yaml"
    save_camera_info(path, calibrated(), "front")
    data = yaml.safe_load(path.read_text())
    assert set(data) == CAMERA_INFO_KEYS and data["camera_name"] == "front"
    assert data["projection_matrix"]["rows"] == 3 and data["projection_matrix"]["cols"] == 4
    assert len(data["projection_matrix"]["data"]) == 12 and data["rectification_matrix"]["data"][0] == 1.0


@pytest.mark.parametrize("text", [
    "image_width: [unclosed",  # not YAML
    "image_width: 640\nimage_height: 480\n",  # no camera_matrix
    "image_width: 640\nimage_height: 480\ncamera_matrix: {data: [1, 2, 3]}\n"
    "distortion_coefficients: {data: []}\n",  # 3 values, not 9
    "- just\n- a list\n",
])
def test_a_corrupt_file_is_a_config_error_naming_the_file(tmp_path, text):
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_camera_info(path)


def test_a_calibration_at_another_resolution_is_refused(tmp_path):
    path = tmp_path / "front.yaml"
    save_camera_info(path, calibrated(), "front")
    with pytest.raises(ConfigError, match=r"calibrated at 640x480 .* configured for 320x240"):
        intrinsics_for(CameraDriverConfig(width=320, height=240, calibration_file=path))


def test_without_a_calibration_file_the_camera_gets_a_pinhole_guess():
    guess = intrinsics_for(CameraDriverConfig(width=320, height=240))
    assert (guess.width, guess.height) == (320, 240) and guess.k[0, 2] == 160.0


@pytest.mark.parametrize("camera", SimWorldConfig().cameras, ids=lambda c: c.name)
def test_shipped_sim_calibrations_match_the_sim_cameras(camera):
    """calibration/sim_<name>.yaml must follow the default sim cameras (regenerate: calibration/README.md)."""
    shipped = load_camera_info(CALIBRATION_DIR / f"sim_{camera.name}.yaml")
    assert (shipped.width, shipped.height) == (camera.width, camera.height)
    np.testing.assert_allclose(shipped.k, camera_intrinsics(camera))
    assert shipped.d == [0.0] * 5


def test_extrinsics_are_stored_next_to_the_intrinsics_they_belong_to(tmp_path):
    path = tmp_path / "front.yaml"
    save_camera_info(path, calibrated(), "front")
    pose = np.array([0.9, 0.1, 0.6, 0.0, 0.70710678, 0.0, 0.70710678])
    save_extrinsics(path, CameraExtrinsics(pose, "fr3_link0", "park_martin", 0.31, 0.02, 14), "front", Intrinsics.pinhole(64, 48))
    np.testing.assert_array_equal(load_camera_info(path).k, calibrated().k), "an existing intrinsic calibration is kept"
    loaded = load_extrinsics(path)
    np.testing.assert_allclose(loaded.pose, pose)
    assert (loaded.parent_frame, loaded.method, loaded.residual_mm, loaded.samples) == ("fr3_link0", "park_martin", 0.31, 14)
    assert yaml.safe_load(path.read_text())["extrinsics"]["child_frame"] == "front_color_optical_frame"


def test_a_file_without_extrinsics_has_none(tmp_path):
    path = tmp_path / "front.yaml"
    save_camera_info(path, calibrated(), "front")
    assert load_extrinsics(path) is None


@pytest.mark.parametrize("extrinsics", [
    "{parent_frame: fr3_link0, translation: [0, 0], rotation: [0, 0, 0, 1]}",
    "{parent_frame: fr3_link0, translation: [0, 0, 0], rotation: [0, 0, 0, 2]}",
    "{translation: [0, 0, 0], rotation: [0, 0, 0, 1]}",
])
def test_bad_extrinsics_are_a_config_error_naming_the_file(tmp_path, extrinsics):
    path = tmp_path / "front.yaml"
    path.write_text(f"extrinsics: {extrinsics}\n")
    with pytest.raises(ConfigError, match="front.yaml: 'extrinsics'"):
        load_extrinsics(path)


def test_device_intrinsics_are_used_when_no_file_is_given():
    device = calibrated()
    assert intrinsics_for(CameraDriverConfig(width=640, height=480), device) is device

