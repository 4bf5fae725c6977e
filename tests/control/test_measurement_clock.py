"""/ee_pose stamps from the robot's clock: read delays are filtered, a slow robot clock is followed."""

import numpy as np

from video_policy_ros.control.arm import MeasurementClock


def stamps(robot_rate: float, delays: np.ndarray, period: float = 0.005) -> tuple[np.ndarray, np.ndarray]:
    clock = MeasurementClock()
    measured_at = 1000.0 + period * np.arange(len(delays))  # wall time of each measurement
    robot_time = robot_rate * period * np.arange(len(delays))
    return measured_at, np.array([clock.stamp(r, m + d) for r, m, d in zip(robot_time, measured_at, delays)])


def test_a_stalled_read_does_not_move_the_stamp():
    delays = np.full(400, 0.001)
    delays[200] = 0.030  # this thread was held up for 30 ms after the state arrived
    measured_at, stamped = stamps(1.0, delays)
    assert abs(stamped[200] - measured_at[200]) < 0.002  # wall-clock stamping would be 30 ms late
    assert np.all(np.diff(stamped) > 0)


def test_a_robot_clock_slower_than_real_time_is_followed_with_a_bounded_lag():
    measured_at, stamped = stamps(0.4, np.full(4000, 0.001))  # a sim world at 40 % of real time
    lag = measured_at - stamped
    assert np.all(lag < 0.06), f"stamps drift {lag.max():.3f} s behind the wall clock"
    assert np.all(np.diff(stamped) > 0)


def test_the_clock_measures_how_fast_the_robot_runs():
    """Robot seconds per wall second, over 1 s windows: exact for a real FR3 read with jitter, 0.3 for a sim world
    at 30 % of real time (what the controller then plans and limits on), None before the first second."""
    rng = np.random.default_rng(0)
    for rate in (1.0, 0.3):
        clock = MeasurementClock()
        period, factors = 0.005, []
        for i in range(600):
            clock.stamp(rate * period * i, 1000.0 + period * i + rng.uniform(0.0, 0.004))
            factors.append(clock.time_factor)
        assert factors[150] is None and abs(factors[-1] - rate) < 0.01 * (1 + rate)
