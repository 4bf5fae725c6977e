"""Intel RealSense cameras through pyrealsense2: colour, optional depth aligned to colour.

``config.device`` is the camera's serial number (several cameras: one node each, by
serial), or a librealsense recording (``.db3``, as its recorder writes them) played back at
its recorded rate, which is how the tests drive this backend without hardware.

Stamps are the middle of the exposure on the host's wall clock (sensors/timestamps.py):
the global timestamp (device clock mapped to the host by librealsense, enabled here) minus
the readout delay the frame's metadata reports.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from video_policy_ros.sensors.calibration import Intrinsics
from video_policy_ros.sensors.camera import Camera, CameraError
from video_policy_ros.sensors.timestamps import DeviceClockMapper, exposure_stamp, readout_to_exposure_s
from video_policy_ros.types import CameraFrame, DepthFrame

RECORDING_SUFFIXES = (".db3",)  # what librealsense 2.59 records (older SDKs wrote .bag)
UVC_EXPOSURE_UNIT_US = 100
# librealsense distortion models → ROS camera_info distortion_model (realsense-ros does the same).
DISTORTION_MODELS = {
    "none": "plumb_bob",
    "brown_conrady": "plumb_bob",
    "inverse_brown_conrady": "plumb_bob",
    "modified_brown_conrady": "plumb_bob",
    "kannala_brandt4": "equidistant",
}


def import_pyrealsense2():
    try:
        import pyrealsense2
    except ImportError as exc:
        raise CameraError(
            f"the realsense backend needs pyrealsense2 ({exc}): `pip install pyrealsense2` "
            "(pinned in requirements.txt) and the system library libusb-1.0-0 (`apt-get install libusb-1.0-0`)"
        ) from None
    return pyrealsense2


def intrinsics_from_profile(profile) -> Intrinsics:
    i = profile.as_video_stream_profile().get_intrinsics()
    k = np.array([[i.fx, 0.0, i.ppx], [0.0, i.fy, i.ppy], [0.0, 0.0, 1.0]])
    return Intrinsics(i.width, i.height, k, [float(c) for c in i.coeffs], DISTORTION_MODELS.get(i.model.name, "plumb_bob"))


class RealSenseCamera(Camera):
    _pipeline = None
    _align = None
    _intrinsics: Intrinsics | None = None
    _depth: DepthFrame | None = None
    _depth_scale_m = 0.001

    def __init__(self, config):
        super().__init__(config)
        self.rs = import_pyrealsense2()
        self._device_clock = DeviceClockMapper()
        self._is_recording = str(config.device).endswith(RECORDING_SUFFIXES)

    # ---------------------------------------------------------------- connect

    def connect(self) -> None:
        rs, c = self.rs, self.config
        rs_config = rs.config()
        if self._is_recording:
            if not Path(str(c.device)).is_file():
                raise CameraError(f"camera '{c.name}': cannot open device {c.device!r}: recording not found (check the path)")
            rs_config.enable_device_from_file(str(c.device), repeat_playback=False)
        else:
            rs_config.enable_device(self._find_serial(str(c.device)))
        rs_config.enable_stream(rs.stream.color, c.width, c.height, rs.format.rgb8, int(round(c.fps)))
        if c.depth:  # the depth sensor's own resolution; aligning maps it onto the colour image
            rs_config.enable_stream(rs.stream.depth, rs.format.z16, int(round(c.fps)))
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(rs_config)
        except RuntimeError as exc:
            raise CameraError(
                f"camera '{c.name}': cannot open device {c.device!r} at {c.width}x{c.height} {c.fps:g} fps"
                f"{' with depth' if c.depth else ''}: {exc} (check the resolution and fps the camera supports, "
                "e.g. with realsense-viewer, and that no other process holds it)"
            ) from None
        self._pipeline = pipeline
        device = profile.get_device()
        if not device.is_playback():
            self._configure_sensors(device)
        self._intrinsics = intrinsics_from_profile(profile.get_stream(rs.stream.color))
        self._align = rs.align(rs.stream.color) if c.depth else None
        if c.depth:
            depth_sensor = device.first_depth_sensor()
            self._depth_scale_m = float(depth_sensor.get_option(rs.option.depth_units))
        self._device_clock.reset()

    def _find_serial(self, serial: str) -> str:
        rs = self.rs
        found = [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]
        if serial not in found:
            raise CameraError(
                f"camera '{self.config.name}': cannot open device {serial!r}: no RealSense with that serial number "
                f"is connected (found: {found or 'none'}; check the USB cable, `lsusb`, and the udev rules)"
            )
        return serial

    def _configure_sensors(self, device) -> None:
        """Exposure and the global (host-mapped) timestamps, on a live device only: recordings are read-only."""
        rs = self.rs
        for sensor in device.query_sensors():
            if sensor.supports(rs.option.global_time_enabled):
                sensor.set_option(rs.option.global_time_enabled, 1)
        color = device.first_color_sensor()
        if self.config.exposure_us is None:
            color.set_option(rs.option.enable_auto_exposure, 1)
        else:
            color.set_option(rs.option.enable_auto_exposure, 0)
            # The colour sensor is a UVC sensor: exposure in units of 100 us (D435: 1..10000).
            rng = color.get_option_range(rs.option.exposure)
            value = float(np.clip(round(self.config.exposure_us / UVC_EXPOSURE_UNIT_US), rng.min, rng.max))
            color.set_option(rs.option.exposure, value)

    # ---------------------------------------------------------------- read

    def read(self) -> CameraFrame:
        if self._pipeline is None:
            raise CameraError(f"camera '{self.config.name}': read() before connect()")
        try:
            frames = self._pipeline.wait_for_frames(int(self.config.frame_timeout_s * 1000))
        except RuntimeError:
            raise CameraError(
                f"camera '{self.config.name}': device {self.config.device!r} stopped delivering frames for "
                f"{self.config.frame_timeout_s} s (unplugged, or the end of a recording)"
            ) from None
        arrival = time.time()
        if self._align is not None:
            frames = self._align.process(frames)
        color = frames.get_color_frame()
        stamp = self._stamp(color, arrival)
        image = np.asanyarray(color.get_data()).copy()  # the SDK reuses its buffers
        if self._align is not None:
            depth = frames.get_depth_frame()
            self._depth = DepthFrame(self.config.name, stamp, np.asanyarray(depth.get_data()).copy(), self._depth_scale_m)
        return CameraFrame(self.config.name, stamp, image)

    def _stamp(self, frame, arrival_host_s: float) -> float:
        rs = self.rs

        def metadata(key):
            return frame.get_frame_metadata(key) if frame.supports_frame_metadata(key) else None

        delay = readout_to_exposure_s(
            metadata(rs.frame_metadata_value.frame_timestamp), metadata(rs.frame_metadata_value.sensor_timestamp)
        )
        domain = frame.get_frame_timestamp_domain().name
        return exposure_stamp(frame.get_timestamp(), domain, arrival_host_s, self._device_clock, delay)

    def device_intrinsics(self) -> Intrinsics | None:
        return self._intrinsics

    def depth(self) -> DepthFrame | None:
        return self._depth

    def disconnect(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass  # already stopped by the device going away
            self._pipeline = None
            self._align = None
