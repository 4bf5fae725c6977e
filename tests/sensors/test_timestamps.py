"""Driver timestamps → exposure time on the host's wall clock."""

from __future__ import annotations

import numpy as np
import pytest

from video_policy_ros.sensors.timestamps import (
    DeviceClockMapper,
    exposure_stamp,
    readout_to_exposure_s,
    v4l2_buffer_stamp,
)


def test_device_clock_is_mapped_by_the_least_delayed_frame():
    rng = np.random.default_rng(0)
    offset = 1_700_000_000.0  # host wall clock - device clock
    mapper = DeviceClockMapper(window=50)
    device_times = np.arange(100) / 30.0
    delays = rng.uniform(0.002, 0.020, size=100)  # USB transfer + scheduling, never negative
    delays[37] = 0.0005
    mapped = [mapper.to_host(t, t + offset + d) for t, d in zip(device_times, delays)]
    # Each mapping uses the smallest delay seen so far; once frame 37 arrived, that is 0.5 ms.
    assert mapped[37] - (device_times[37] + offset) == pytest.approx(0.0005, abs=1e-6)
    assert np.all(np.asarray(mapped[37:87]) - (device_times[37:87] + offset) == pytest.approx(0.0005, abs=1e-6))
    # After it leaves the window the estimate follows the later frames (slow drift stays tracked).
    assert mapped[99] - (device_times[99] + offset) == pytest.approx(delays[50:].min(), abs=1e-6)


def test_a_reset_forgets_the_old_device_clock():
    mapper = DeviceClockMapper()
    mapper.to_host(100.0, 1000.0)
    mapper.reset()  # replugged: the device clock restarted at 0
    assert mapper.to_host(0.5, 1000.01) == pytest.approx(1000.01)


@pytest.mark.parametrize("domain", ["global_time", "system_time"])
def test_host_domains_are_wall_clock_milliseconds_minus_the_readout_delay(domain):
    stamp = exposure_stamp(1_700_000_000_123.0, domain, 1_700_000_000.2, DeviceClockMapper(), readout_delay_s=0.008)
    assert stamp == pytest.approx(1_700_000_000.115)


def test_hardware_clock_goes_through_the_mapper():
    stamp = exposure_stamp(5_000.0, "hardware_clock", 1_000.004, DeviceClockMapper(), readout_delay_s=0.010)
    assert stamp == pytest.approx(1_000.004 - 0.010)


def test_unknown_domain_is_refused():
    with pytest.raises(ValueError, match="unknown timestamp domain 'tai'"):
        exposure_stamp(1.0, "tai", 1.0, DeviceClockMapper())


@pytest.mark.parametrize("frame_us, sensor_us, expected", [
    (1_008_000, 1_000_000, 0.008),
    (None, 1_000_000, 0.0),  # firmware without metadata
    (1_000_000, 1_008_000, 0.0),  # wrapped clock
    (5_000_000, 1_000_000, 0.0),  # implausible
])
def test_readout_delay_from_metadata(frame_us, sensor_us, expected):
    assert readout_to_exposure_s(frame_us, sensor_us) == pytest.approx(expected)


def test_v4l2_buffer_stamp_moves_monotonic_time_to_the_wall_clock():
    assert v4l2_buffer_stamp(99_980.0, 5_000.0, 100.0, 1 / 30) == pytest.approx(4_999.98)


@pytest.mark.parametrize("buffer_ms", [0.0, 1234.0, 100_100.0])  # a file position, a stream position, the future
def test_values_that_are_no_recent_monotonic_time_are_rejected(buffer_ms):
    assert v4l2_buffer_stamp(buffer_ms, 5_000.0, 100.0, 1 / 30) is None
