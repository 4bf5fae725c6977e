"""ROS camera_info YAML files (the format camera_calibration writes)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video_policy_ros.config import ConfigError, read_yaml


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    k: np.ndarray  # (3, 3)
    d: list[float]

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
        return Intrinsics(int(data["image_width"]), int(data["image_height"]), k, d)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: not a ROS camera_info YAML ({type(exc).__name__}: {exc}); "
            "expected image_width, image_height, camera_matrix.data (9), distortion_coefficients.data"
        ) from None
