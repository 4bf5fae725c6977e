"""The camera port: connect / read / disconnect, usable in a ``with`` block, and its registry."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.errors import StackError
from video_policy_ros.sensors.calibration import Intrinsics
from video_policy_ros.types import CameraFrame, DepthFrame


class CameraError(StackError):
    """The camera cannot be opened or stopped delivering frames."""


class Camera(ABC):
    def __init__(self, config: CameraDriverConfig):
        self.config = config

    @abstractmethod
    def connect(self) -> None:
        """Open the device; raises CameraError with what to check."""

    @abstractmethod
    def read(self) -> CameraFrame:
        """Block until the next frame; stamp = exposure time. Raises CameraError when the device is gone."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the device; safe to call when it is not connected."""

    def device_intrinsics(self) -> Intrinsics | None:
        """The intrinsics the device itself reports (factory calibration), once connected; None if it has none."""
        return None

    def depth(self) -> DepthFrame | None:
        """Depth aligned to the frame the last ``read()`` returned; None when the backend or config has no depth."""
        return None

    def __enter__(self) -> "Camera":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()


# Backend name → (module, class). Explicit, so nothing is guessed from a name at run time;
# the module is imported only when its backend is chosen (pyrealsense2 is optional).
BACKENDS: dict[str, tuple[str, str]] = {
    "opencv": ("video_policy_ros.sensors.opencv_camera", "OpenCVCamera"),
    "realsense": ("video_policy_ros.sensors.realsense_camera", "RealSenseCamera"),
}


def build_camera(config: CameraDriverConfig) -> Camera:
    module, cls = BACKENDS[config.backend]  # the config validates the name
    return getattr(importlib.import_module(module), cls)(config)
