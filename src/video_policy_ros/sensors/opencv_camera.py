"""UVC / V4L2 cameras (and video files) through OpenCV."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from video_policy_ros.sensors.camera import Camera, CameraError
from video_policy_ros.sensors.timestamps import v4l2_buffer_stamp
from video_policy_ros.types import CameraFrame


class OpenCVCamera(Camera):
    """``config.device`` is a V4L2 index, a device path, a stream URL or a video file.

    A live device blocks in ``read()`` at its own rate. A video file would be read as
    fast as the disk allows, so it is paced here, at ``config.fps``: the backend is what
    knows the source is a recording, and pacing a live camera as well would only queue
    frames in the driver and make them stale.

    Stamps, as close to the exposure as OpenCV allows: a V4L2 device's buffer timestamp
    (uvcvideo: the *start* of the exposure, from the camera's own clock when it sends one),
    moved from CLOCK_MONOTONIC onto the wall clock. That is half an exposure time before its
    middle (~0-15 ms indoors). Where the backend gives no buffer timestamp (other OpenCV
    backends, streams, files), the stamp is when ``read()`` returned: late by the exposure's
    second half, the readout and the USB transfer (typically one frame period, 33 ms at 30 fps).
    """

    _capture = None
    _period_s: float | None = None  # set for video files only
    _next_due = 0.0

    def connect(self) -> None:
        import cv2

        c = self.config
        capture = cv2.VideoCapture(c.device)
        if not capture.isOpened():
            capture.release()
            raise CameraError(
                f"camera '{c.name}': cannot open device {c.device!r} with OpenCV "
                "(check the index/path exists, permissions on /dev/video*, and that no other process holds it)"
            )
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, c.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, c.height)
        capture.set(cv2.CAP_PROP_FPS, c.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's queue only makes frames older
        self._capture = capture
        self._period_s = 1.0 / c.fps if isinstance(c.device, str) and Path(c.device).is_file() else None
        self._next_due = time.monotonic()

    def read(self) -> CameraFrame:
        import cv2

        if self._capture is None:
            raise CameraError(f"camera '{self.config.name}': read() before connect()")
        if self._period_s is not None:
            self._wait_for_next_frame_time()
        ok, bgr = self._capture.read()
        stamp = self._capture_stamp()
        if not ok or bgr is None:
            raise CameraError(
                f"camera '{self.config.name}': device {self.config.device!r} stopped delivering frames "
                "(unplugged, or the end of a video file)"
            )
        if bgr.shape[:2] != (self.config.height, self.config.width):
            bgr = cv2.resize(bgr, (self.config.width, self.config.height), interpolation=cv2.INTER_AREA)
        return CameraFrame(self.config.name, stamp, np.ascontiguousarray(bgr[..., ::-1]))

    def _capture_stamp(self) -> float:
        import cv2

        now = time.time()
        if self._period_s is not None:  # a file's "position" is not a time on any clock
            return now
        buffer_stamp = v4l2_buffer_stamp(
            self._capture.get(cv2.CAP_PROP_POS_MSEC), now, time.monotonic(), 1.0 / self.config.fps
        )
        return now if buffer_stamp is None else buffer_stamp

    def _wait_for_next_frame_time(self) -> None:
        now = time.monotonic()
        if now < self._next_due:
            time.sleep(self._next_due - now)
        # Due times advance from the schedule, not from "now", so the mean rate is exactly
        # fps; after a stall (slower than fps) the schedule restarts instead of bursting.
        self._next_due = max(self._next_due + self._period_s, time.monotonic())

    def disconnect(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None
