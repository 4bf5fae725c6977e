"""UVC / V4L2 cameras (and video files) through OpenCV."""

from __future__ import annotations

import time

import numpy as np

from video_policy_ros.sensors.camera import Camera, CameraError
from video_policy_ros.types import CameraFrame


class OpenCVCamera(Camera):
    _capture = None

    def connect(self) -> None:
        import cv2

        c = self.config
        capture = cv2.VideoCapture(c.device)
        if not capture.isOpened():
            raise CameraError(
                f"camera '{c.name}': cannot open device {c.device!r} with OpenCV "
                "(check the index/path, permissions on /dev/video*, and that no other process holds it)"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        capture.set(cv2.CAP_PROP_FPS, c.fps)
        self._capture = capture

    def read(self) -> CameraFrame:
        import cv2

        if self._capture is None:
            raise CameraError(f"camera '{self.config.name}': read() before connect()")
        ok, bgr = self._capture.read()
        stamp = time.time()  # V4L2 buffer timestamps are not exposed reliably through OpenCV
        if not ok or bgr is None:
            raise CameraError(f"camera '{self.config.name}': device {self.config.device!r} stopped delivering frames")
        if bgr.shape[:2] != (self.config.height, self.config.width):
            bgr = cv2.resize(bgr, (self.config.width, self.config.height), interpolation=cv2.INTER_AREA)
        return CameraFrame(self.config.name, stamp, np.ascontiguousarray(bgr[..., ::-1]))

    def disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
