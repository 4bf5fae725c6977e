"""ROS camera_info YAML files (the format camera_calibration writes), read and written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from video_policy_ros.config import CameraDriverConfig, ConfigError, read_yaml


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    k: np.ndarray  # (3, 3)
    d: list[float]
    distortion_model: str = "plumb_bob"

    @classmethod
    def pinhole(cls, width: int, height: int, horizontal_fov_deg: float = 69.0) -> "Intrinsics":
        """Uncalibrated guess (a typical webcam FOV), used until a calibration file is given."""
        f = 0.5 * width / np.tan(np.radians(horizontal_fov_deg) / 2)
        return cls(width, height, np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]]), [0.0] * 5)


def load_camera_info(path: str | Path) -> Intrinsics:
    data = read_yaml(path)
    try:
        k = np.array(data["camera_matrix"]["data"], dtype=float).reshape(3, 3)
        d = [float(v) for v in data["distortion_coefficients"]["data"]]
        intrinsics = Intrinsics(
            int(data["image_width"]), int(data["image_height"]), k, d, str(data.get("distortion_model", "plumb_bob"))
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not a ROS camera_info YAML ({type(exc).__name__}: {exc}); "
            "expected image_width, image_height, camera_matrix.data (9), distortion_coefficients.data"
        ) from None
    if intrinsics.width <= 0 or intrinsics.height <= 0 or not np.all(np.isfinite(k)) or k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConfigError(f"{path}: image size and focal lengths must be positive; recalibrate the camera")
    return intrinsics


def save_camera_info(path: str | Path, intrinsics: Intrinsics, camera_name: str) -> None:
    """Write ``intrinsics`` as camera_calibration would for a monocular camera (R = I, P = [K | 0])."""
    i = intrinsics
    projection = np.hstack([i.k, np.zeros((3, 1))])

    def matrix(rows: int, cols: int, values) -> dict:
        return {"rows": rows, "cols": cols, "data": [float(v) for v in np.ravel(values)]}

    data = {
        "image_width": int(i.width),
        "image_height": int(i.height),
        "camera_name": camera_name,
        "camera_matrix": matrix(3, 3, i.k),
        "distortion_model": i.distortion_model,
        "distortion_coefficients": matrix(1, len(i.d), i.d),
        "rectification_matrix": matrix(3, 3, np.eye(3)),
        "projection_matrix": matrix(3, 4, projection),
    }
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


def intrinsics_for(config: CameraDriverConfig) -> Intrinsics:
    """The camera's calibration file, or an uncalibrated guess when it has none.

    A calibration taken at another resolution would publish a wrong camera_info, so it is refused.
    """
    if config.calibration_file is None:
        return Intrinsics.pinhole(config.width, config.height)
    intrinsics = load_camera_info(config.calibration_file)
    if (intrinsics.width, intrinsics.height) != (config.width, config.height):
        raise ConfigError(
            f"{config.calibration_file}: calibrated at {intrinsics.width}x{intrinsics.height} but camera "
            f"'{config.name}' is configured for {config.width}x{config.height}; set width/height to match "
            "or recalibrate at this resolution"
        )
    return intrinsics
