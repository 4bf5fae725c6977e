"""ROS camera_info YAML files (the format camera_calibration writes), read and written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from video_policy_ros.config import CameraDriverConfig, ConfigError, read_yaml
from video_policy_ros.types import camera_optical_frame


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


def intrinsics_for(config: CameraDriverConfig, device_intrinsics: Intrinsics | None = None) -> Intrinsics:
    """The camera's calibration file, else what the device reports, else an uncalibrated guess.

    A calibration taken at another resolution would publish a wrong camera_info, so it is refused.
    """
    if config.calibration_file is None:
        return device_intrinsics or Intrinsics.pinhole(config.width, config.height)
    intrinsics = load_camera_info(config.calibration_file)
    if (intrinsics.width, intrinsics.height) != (config.width, config.height):
        raise ConfigError(
            f"{config.calibration_file}: calibrated at {intrinsics.width}x{intrinsics.height} but camera "
            f"'{config.name}' is configured for {config.width}x{config.height}; set width/height to match "
            "or recalibrate at this resolution"
        )
    return intrinsics


# ---------------------------------------------------------------- extrinsics (hand-eye result)


@dataclass(frozen=True)
class CameraExtrinsics:
    """Pose of the camera's optical frame (``<name>_color_optical_frame``) in ``parent_frame``.

    ``parent_frame`` is ``fr3_link0`` for a static camera (eye-to-hand) and ``fr3_hand_tcp``
    for a camera on the hand (eye-in-hand: the frame /ee_pose reports).
    """

    pose: np.ndarray  # (7,) [x, y, z, qx, qy, qz, qw]
    parent_frame: str
    method: str = ""
    residual_mm: float = 0.0
    residual_deg: float = 0.0
    samples: int = 0


EXTRINSICS_KEY = "extrinsics"


def load_extrinsics(path: str | Path) -> CameraExtrinsics | None:
    """The ``extrinsics`` section of a camera's calibration file, None when it has none."""
    data = read_yaml(path).get(EXTRINSICS_KEY)
    if data is None:
        return None
    try:
        pose = np.array([*data["translation"], *data["rotation"]], dtype=float)
        extrinsics = CameraExtrinsics(
            pose, str(data["parent_frame"]), str(data.get("method", "")), float(data.get("residual_mm", 0.0)),
            float(data.get("residual_deg", 0.0)), int(data.get("samples", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"{path}: '{EXTRINSICS_KEY}' needs parent_frame, translation [x, y, z] and rotation [qx, qy, qz, qw] "
            f"({type(exc).__name__}: {exc}); rerun `video-policy calibrate hand-eye`"
        ) from None
    if pose.shape != (7,) or not np.all(np.isfinite(pose)) or abs(np.linalg.norm(pose[3:]) - 1.0) > 1e-3:
        raise ConfigError(f"{path}: '{EXTRINSICS_KEY}' needs 3 translations and a unit quaternion (x, y, z, w)")
    return extrinsics


def save_extrinsics(path: str | Path, extrinsics: CameraExtrinsics, camera_name: str, intrinsics: Intrinsics) -> None:
    """Store ``extrinsics`` in the camera's calibration file, next to its camera_info keys.

    An existing file keeps its intrinsics (they came from a proper intrinsic calibration);
    a new one gets ``intrinsics`` (what the camera published while calibrating).
    """
    path = Path(path)
    if not path.is_file():
        save_camera_info(path, intrinsics, camera_name)
    data = read_yaml(path)
    e = extrinsics
    data[EXTRINSICS_KEY] = {
        "parent_frame": e.parent_frame,
        "child_frame": camera_optical_frame(camera_name),
        "translation": [float(v) for v in e.pose[:3]],
        "rotation": [float(v) for v in e.pose[3:]],
        "method": e.method,
        "residual_mm": round(float(e.residual_mm), 3),
        "residual_deg": round(float(e.residual_deg), 4),
        "samples": int(e.samples),
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False, default_flow_style=None))
