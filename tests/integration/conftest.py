"""Fixtures for tests that run the real sim world, franky, rclpy and several processes."""

import pytest

from video_policy_ros.preflight.processes import robot_ip_for_this_process


@pytest.fixture
def robot_ip() -> str:
    return robot_ip_for_this_process()
