"""The command core in isolation: limits, clamping, latching. (The real arm: tests/integration.)"""

import numpy as np
import pytest

from video_policy_ros.control.commander import ArmCommander, ChunkRejected, CommandLimits
from video_policy_ros.types import ActionChunk, ArmState

DOWN = np.array([1.0, 0.0, 0.0, 0.0])
LIMITS = CommandLimits(
    max_linear_speed=0.25, max_angular_speed=0.6, position_gain=4.0,
    workspace_min=np.array([0.3, -0.4, 0.05]), workspace_max=np.array([0.7, 0.4, 0.6]),
)


def state(position=(0.5, 0.0, 0.3), joint_speed=0.0, quat=DOWN):
    return ArmState(0.0, np.zeros(7), np.full(7, joint_speed), np.concatenate([position, quat]), 0.04)


def chunk_to(target, stamp=0.0, n=10, dt=0.1, gripper=0.0):
    poses = np.array([np.concatenate([target, DOWN])] * n)
    return ActionChunk(stamp, dt, poses, np.full(n, gripper))


def test_speed_is_scaled_down_to_the_limit_never_up():
    cmd = ArmCommander(LIMITS)
    cmd.accept_chunk(chunk_to([0.7, 0.3, 0.3], dt=0.01), now=0.0, state=state())
    fast = cmd.command(0.05, state())
    assert np.linalg.norm(fast.linear) == pytest.approx(0.25)
    cmd = ArmCommander(LIMITS)
    cmd.accept_chunk(chunk_to([0.505, 0.0, 0.3], dt=1.0), now=0.0, state=state())
    slow = cmd.command(0.5, state())
    assert 0 < np.linalg.norm(slow.linear) < 0.05


def test_angular_speed_is_limited():
    cmd = ArmCommander(LIMITS)
    tilted = np.array([0.0, 1.0, 0.0, 0.0])  # 180 deg away about z
    cmd.accept_chunk(ActionChunk(0.0, 0.01, np.array([[0.5, 0, 0.3, *tilted]] * 5), np.zeros(5)), 0.0, state())
    assert np.linalg.norm(cmd.command(0.02, state()).angular) == pytest.approx(0.6)


def test_targets_outside_the_workspace_are_clamped():
    cmd = ArmCommander(LIMITS)
    cmd.accept_chunk(chunk_to([0.5, 0.0, -0.5], dt=0.1), now=0.0, state=state(position=(0.5, 0.0, 0.05)))
    at_floor = cmd.command(5.0, state(position=(0.5, 0.0, 0.05)))
    np.testing.assert_allclose(at_floor.linear, 0.0, atol=1e-12)  # the floor of the box holds it


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_chunks_are_rejected_and_the_old_plan_kept(bad):
    cmd = ArmCommander(LIMITS)
    cmd.accept_chunk(chunk_to([0.6, 0.0, 0.3]), 0.0, state())
    poisoned = chunk_to([0.6, 0.0, 0.3])
    poisoned.poses[3, 1] = bad
    with pytest.raises(ChunkRejected, match="NaN or infinite"):
        cmd.accept_chunk(poisoned, 0.1, state())
    assert cmd.active and np.linalg.norm(cmd.command(0.2, state()).linear) > 0


def test_non_unit_quaternions_are_rejected():
    chunk = chunk_to([0.6, 0.0, 0.3])
    chunk.poses[:, 3:] *= 2
    with pytest.raises(ChunkRejected, match="unit quaternions"):
        ArmCommander(LIMITS).accept_chunk(chunk, 0.0, state())


def test_stale_chunk_is_rejected():
    with pytest.raises(ChunkRejected, match="stale"):
        ArmCommander(LIMITS).accept_chunk(chunk_to([0.6, 0, 0.3], stamp=0.0), now=5.0, state=state())


def test_stop_latches_until_reset_at_rest():
    cmd = ArmCommander(LIMITS)
    cmd.accept_chunk(chunk_to([0.6, 0.0, 0.3]), 0.0, state())
    assert cmd.latch_stop("estop") is True
    assert cmd.latch_stop("second") is False  # the first reason is kept
    assert cmd.command(0.1, state()).halt
    with pytest.raises(ChunkRejected, match="reset"):
        cmd.accept_chunk(chunk_to([0.6, 0.0, 0.3]), 0.1, state())
    ok, message = cmd.reset(state(joint_speed=0.2))
    assert not ok and "moving" in message
    ok, message = cmd.reset(state())
    assert ok and "estop" in message
    hold = cmd.command(0.2, state())
    assert not hold.halt and not cmd.active and np.all(hold.linear == 0)  # no stale plan resumes
