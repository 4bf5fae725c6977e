"""Pairing an image with the pose the arm held while it was taken."""

from __future__ import annotations

import re

import numpy as np

from video_policy_ros.sensors.hand_eye import PoseHistory

HOME = np.array([0.4, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def history(poses_at: dict[float, np.ndarray]) -> PoseHistory:
    h = PoseHistory()
    for stamp, pose in poses_at.items():
        h.add(stamp, pose)
    return h


def test_a_pose_held_through_the_window_is_returned():
    h = history({10.0 + 0.01 * i: HOME for i in range(60)})
    np.testing.assert_array_equal(h.still_pose_at(10.5, still_s=0.4), HOME)


def test_a_moving_arm_is_refused_with_how_much_it_moved():
    moving = {10.0 + 0.01 * i: HOME + [0.0001 * i, 0, 0, 0, 0, 0, 0] for i in range(60)}  # 10 mm/s
    answer = history(moving).still_pose_at(10.5, still_s=0.4)
    moved_mm = float(re.match(r"the arm is moving \((\d+\.\d) mm", answer).group(1))
    assert 4.0 <= moved_mm <= 4.6 and answer.endswith("hold it still")  # 0.4 s (+ one pose period) at 10 mm/s


def test_poses_that_do_not_cover_the_window_are_refused():
    assert "no /ee_pose" in history({10.3: HOME, 10.5: HOME}).still_pose_at(10.5, still_s=0.4)  # starts too late
    assert "no /ee_pose" in history({10.0: HOME, 10.1: HOME}).still_pose_at(10.5, still_s=0.4)  # stopped
    assert "no /ee_pose" in PoseHistory().still_pose_at(10.5, still_s=0.4)


def test_old_poses_are_forgotten():
    h = PoseHistory(keep_s=1.0)
    h.add(0.0, HOME)
    h.add(5.0, HOME)
    assert "no /ee_pose" in h.still_pose_at(5.0, still_s=0.5)
