import numpy as np
import pytest

from video_policy_ros.control.trajectory import Trajectory, TrajectorySample
from video_policy_ros.types import ActionChunk

DOWN = [1.0, 0.0, 0.0, 0.0]


def line_chunk(stamp, n=10, dt=0.1, start=(0.5, 0.0, 0.3), step=(0.01, 0, 0)):
    poses = np.array([[*(np.array(start) + (i + 1) * np.array(step)), *DOWN] for i in range(n)])
    return ActionChunk(stamp=stamp, dt=dt, poses=poses, gripper=np.full(n, 0.02))


def sample_at(pose):
    return TrajectorySample(np.array(pose, float), np.zeros(3), np.zeros(3), 0.04, True)


def test_splice_starts_at_the_current_setpoint_and_keeps_chunk_timing():
    chunk = line_chunk(stamp=10.0)
    start = sample_at([0.5, 0.0, 0.3, *DOWN])
    traj = Trajectory.splice(chunk, now=10.0, start=start)
    np.testing.assert_allclose(traj.sample(10.0).pose, start.pose)
    np.testing.assert_allclose(traj.sample(10.1).pose[:3], [0.51, 0, 0.3])
    mid = traj.sample(10.15)
    np.testing.assert_allclose(mid.pose[:3], [0.515, 0, 0.3])
    np.testing.assert_allclose(mid.linear_velocity, [0.1, 0, 0])
    assert mid.gripper == pytest.approx(0.02)


def test_points_already_due_are_dropped():
    chunk = line_chunk(stamp=10.0)
    traj = Trajectory.splice(chunk, now=10.55, start=sample_at([0.5, 0.0, 0.3, *DOWN]))
    assert traj.times[0] == pytest.approx(10.55)
    assert traj.times[1] == pytest.approx(10.6)  # 10.1 .. 10.5 are gone
    assert len(traj.times) == 1 + 5


def test_stale_chunk_gives_none():
    assert Trajectory.splice(line_chunk(stamp=10.0), now=11.5, start=sample_at([0.5, 0, 0.3, *DOWN])) is None


def test_holds_last_point_after_the_end():
    traj = Trajectory.splice(line_chunk(stamp=0.0), now=0.0, start=sample_at([0.5, 0.0, 0.3, *DOWN]))
    end = traj.sample(5.0)
    assert end.finished
    np.testing.assert_allclose(end.pose[:3], [0.6, 0, 0.3])
    np.testing.assert_allclose(end.linear_velocity, 0)


def test_times_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        Trajectory(np.array([0.0, 0.0]), np.zeros((2, 7)), np.zeros(2))
