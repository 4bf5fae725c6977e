"""The rclpy fixture of the sensor tests (nodes in one context, spun from the test thread)."""

from tests.sensors.conftest import ros_graph  # noqa: F401  (a fixture, used by name)
