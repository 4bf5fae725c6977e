"""Launch tests need the real `ros2 launch` in this venv and the package in its ament index."""

import sys
from pathlib import Path

import pytest

from tests.launch.launching import ROS2


@pytest.fixture(autouse=True)
def real_ros2_launch():
    if not ROS2.exists():
        pytest.skip(f"the real ros2 launch is not installed into {sys.prefix}: run "
                    "../shared/ros2-launch/install.sh .venv (make install does it when ../shared/ros2-launch exists)")
    if not (Path(sys.prefix) / "share/ament_index/resource_index/packages/video_policy_ros").exists():
        pytest.skip(f"video_policy_ros is not installed into {sys.prefix} (run make install)")
