"""Camera timestamps → exposure time on this host's wall clock (the clock every stamp in the stack uses).

Drivers report a frame's time in one of three clocks (librealsense's timestamp domains):

- ``global_time``: the device clock already mapped to the host's wall clock by the driver;
- ``system_time``: the host's wall clock when the frame *arrived* (later than the exposure);
- ``hardware_clock``: the device's own clock, mapped here by :class:`DeviceClockMapper`.

The reported time marks the start of the frame's readout, not its exposure. When the device
also reports the middle of the exposure in the same clock (librealsense's SENSOR_TIMESTAMP
and FRAME_TIMESTAMP metadata, both in microseconds), the difference is subtracted, so the
stamp is the middle of the exposure.
"""

from __future__ import annotations

from collections import deque

HOST_DOMAINS = ("global_time", "system_time")


class DeviceClockMapper:
    """Maps a device clock (seconds) onto the host's wall clock.

    Each frame gives one sample ``offset = arrival_host - device_time``, i.e. the true clock
    offset plus a transfer delay that is never negative. The smallest offset over the last
    ``window`` frames is the best estimate (the frame that was delayed least); the window
    lets the estimate follow a slow drift between the two clocks.
    """

    def __init__(self, window: int = 300):
        self._offsets: deque[float] = deque(maxlen=window)

    def to_host(self, device_time_s: float, arrival_host_s: float) -> float:
        self._offsets.append(arrival_host_s - device_time_s)
        return device_time_s + min(self._offsets)

    def reset(self) -> None:
        """The device restarted (reconnect): its clock starts again."""
        self._offsets.clear()


def readout_to_exposure_s(frame_timestamp_us: int | None, sensor_timestamp_us: int | None) -> float:
    """Seconds from the middle of the exposure to the readout the frame's time marks (0 if unknown)."""
    if frame_timestamp_us is None or sensor_timestamp_us is None:
        return 0.0
    delay = (frame_timestamp_us - sensor_timestamp_us) * 1e-6
    # A negative or implausibly long delay is a clock wrap or a firmware that does not fill both fields.
    return delay if 0.0 <= delay < 1.0 else 0.0


def exposure_stamp(
    timestamp_ms: float,
    domain: str,
    arrival_host_s: float,
    device_clock: DeviceClockMapper,
    readout_delay_s: float = 0.0,
) -> float:
    """The host wall-clock time of the middle of the exposure of one frame."""
    if domain in HOST_DOMAINS:
        readout = timestamp_ms * 1e-3
    elif domain == "hardware_clock":
        readout = device_clock.to_host(timestamp_ms * 1e-3, arrival_host_s)
    else:
        raise ValueError(f"unknown timestamp domain '{domain}'")
    return readout - readout_delay_s


def v4l2_buffer_stamp(buffer_time_ms: float, wall_now_s: float, monotonic_now_s: float, period_s: float) -> float | None:
    """A V4L2 buffer timestamp (CLOCK_MONOTONIC, ms, as OpenCV's CAP_PROP_POS_MSEC reports it) on the wall clock.

    uvcvideo stamps a buffer at the start of its exposure (V4L2_BUF_FLAG_TSTAMP_SRC_SOE) on
    CLOCK_MONOTONIC. Other OpenCV backends report a position in a stream under the same
    property; anything that is not a monotonic time from the last few frame periods is
    rejected (None), and the caller falls back to the time the read returned.
    """
    age = monotonic_now_s - buffer_time_ms * 1e-3
    if not 0.0 <= age <= max(1.0, 10 * period_s):
        return None
    return wall_now_s - age
