"""The camera port: connect / read / disconnect, usable in a ``with`` block."""

from __future__ import annotations

from abc import ABC, abstractmethod

from video_policy_ros.config import CameraDriverConfig
from video_policy_ros.errors import StackError
from video_policy_ros.types import CameraFrame


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
        """Block until the next frame; stamp = capture time. Raises CameraError when the device is gone."""

    @abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self) -> "Camera":
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()


def build_camera(config: CameraDriverConfig) -> Camera:
    """Backend registry: config name → class, imported only when chosen."""
    if config.backend == "opencv":
        from video_policy_ros.sensors.opencv_camera import OpenCVCamera

        return OpenCVCamera(config)
    raise CameraError(f"camera backend '{config.backend}' is not available")  # the config validates names
