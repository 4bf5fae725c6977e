"""The camera driver's config: one camera.yaml for every camera node, resolved by the node's name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from video_policy_ros.config import CameraDriverConfig


def test_one_camera_file_serves_several_cameras_by_name(tmp_path):
    values = {"backend": "realsense", "device": "0", "devices": ["front=123622270", "wrist=213522251"],
              "calibration_files": [f"wrist={tmp_path / 'wrist.yaml'}"]}
    front, wrist = (CameraDriverConfig(**values, name=n) for n in ("front", "wrist"))
    assert (front.device, front.calibration_file) == ("123622270", None)
    assert (wrist.device, str(wrist.calibration_file)) == ("213522251", str(tmp_path / "wrist.yaml"))
    assert CameraDriverConfig(**values, name="side").device == "0"


def test_an_entry_without_a_camera_name_is_refused():
    with pytest.raises(ValidationError, match="entry '213522251' must be '<camera name>=<value>'"):
        CameraDriverConfig(devices=["213522251"])
