"""video_policy_ros: a ROS 2 stack that runs a Video Policy on a Franka FR3."""

__version__ = "0.1.0"
