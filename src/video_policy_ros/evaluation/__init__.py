"""Closed-loop evaluation of any policy in the sim world (``video-policy eval``): no ROS here,
the episodes themselves run through nodes/episode_runner.py."""
