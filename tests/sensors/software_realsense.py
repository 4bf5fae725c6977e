"""RealSense recordings made without hardware: pyrealsense2's software device, recorded by its recorder.

The camera backend then plays them back through the same pipeline a live camera uses.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyrealsense2 as rs

SERIAL = "000011112222"
K = np.array([[50.0, 0.0, 31.5], [0.0, 51.0, 23.5], [0.0, 0.0, 1.0]])
COEFFS = [0.1, -0.05, 0.001, 0.002, 0.0]
READOUT_DELAY_US = 8_000  # FRAME_TIMESTAMP - SENSOR_TIMESTAMP: middle of exposure → readout


@dataclass(frozen=True)
class RecordedFrame:
    image: np.ndarray  # (H, W, 3) uint8
    depth_mm: int  # the (constant) depth of the frame
    timestamp_ms: float  # what the device reports (global time: host wall clock)

    @property
    def exposure_stamp(self) -> float:
        return self.timestamp_ms * 1e-3 - READOUT_DELAY_US * 1e-6


def _stream(stream, fmt, bpp: int, uid: int, width: int, height: int, fps: int):
    intrinsics = rs.intrinsics()
    intrinsics.width, intrinsics.height = width, height
    intrinsics.fx, intrinsics.fy, intrinsics.ppx, intrinsics.ppy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    intrinsics.model, intrinsics.coeffs = rs.distortion.brown_conrady, COEFFS
    s = rs.video_stream()
    s.type, s.index, s.uid, s.width, s.height, s.fps, s.bpp, s.fmt = stream, 0, uid, width, height, fps, bpp, fmt
    s.intrinsics = intrinsics
    return s


def record(path: Path, frames: list[RecordedFrame], fps: int = 30) -> Path:
    """A librealsense recording (.db3) of a colour + depth camera that saw ``frames``."""
    height, width, _ = frames[0].image.shape
    device = rs.software_device()
    device.register_info(rs.camera_info.serial_number, SERIAL)
    device.register_info(rs.camera_info.name, "Software RealSense")
    color_sensor, depth_sensor = device.add_sensor("RGB Camera"), device.add_sensor("Stereo Module")
    color = color_sensor.add_video_stream(_stream(rs.stream.color, rs.format.rgb8, 3, 0, width, height, fps))
    depth = depth_sensor.add_video_stream(_stream(rs.stream.depth, rs.format.z16, 2, 1, width, height, fps))
    depth_sensor.add_read_only_option(rs.option.depth_units, 0.001)
    identity = rs.extrinsics()
    identity.rotation, identity.translation = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0], [0.0, 0.0, 0.0]
    depth.register_extrinsics_to(color, identity)
    device.create_matcher(rs.matchers.default)

    recorder = rs.recorder(str(path), device)
    queue = rs.frame_queue(2 * len(frames) + 4)
    for sensor, profile in ((color_sensor, color), (depth_sensor, depth)):
        sensor.open(profile)
        sensor.start(queue)
    keep_alive = []  # the SDK reads the pixel buffers after on_video_frame returns
    for number, f in enumerate(frames):
        for sensor, profile, pixels in (
            (color_sensor, color, f.image),
            (depth_sensor, depth, np.full((height, width), f.depth_mm, np.uint16)),
        ):
            keep_alive.append(pixels)
            sensor.set_metadata(rs.frame_metadata_value.frame_timestamp, int(f.timestamp_ms * 1000))
            sensor.set_metadata(rs.frame_metadata_value.sensor_timestamp, int(f.timestamp_ms * 1000) - READOUT_DELAY_US)
            frame = rs.software_video_frame()
            frame.pixels, frame.bpp, frame.stride = pixels, pixels.itemsize * (3 if pixels.ndim == 3 else 1), pixels.strides[0]
            frame.timestamp, frame.domain, frame.frame_number = f.timestamp_ms, rs.timestamp_domain.global_time, number
            frame.profile = profile.as_video_stream_profile()
            sensor.on_video_frame(frame)
        time.sleep(1.0 / fps)
    for sensor in (color_sensor, depth_sensor):
        sensor.stop()
        sensor.close()
    del recorder  # flushes and closes the file
    return path


def frames_at(count: int, fps: int = 30, size: tuple[int, int] = (64, 48), start_ms: float | None = None) -> list[RecordedFrame]:
    """``count`` frames of distinct colours and depths, stamped ``1 / fps`` apart."""
    width, height = size
    start_ms = time.time() * 1000 if start_ms is None else start_ms
    return [
        RecordedFrame(np.full((height, width, 3), (10 * i % 256, 200, 255 - 10 * i % 256), np.uint8), 500 + 10 * i,
                      start_ms + i * 1000.0 / fps)
        for i in range(count)
    ]
