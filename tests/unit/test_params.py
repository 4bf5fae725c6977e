"""Config ↔ ROS parameters: every key declared read-only with its description and range;
overrides from launch/--ros-args applied and validated (real rclpy nodes, no graph)."""

import pytest
import rclpy
from rclpy.parameter import Parameter

from video_policy_ros.config import ConfigError, ControllerConfig, SimWorldConfig
from video_policy_ros.nodes.params import load_node_config
from video_policy_ros.nodes.base import private_context


@pytest.fixture
def make_node():
    context = private_context()
    nodes = []

    def make(name: str, **overrides):
        node = rclpy.create_node(
            name, context=context,
            parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
        )
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.destroy_node()
    rclpy.shutdown(context=context)


def test_every_key_is_a_read_only_parameter_with_description_and_range(make_node):
    node = make_node("controller_params")
    config = load_node_config(node, "controller", ControllerConfig)
    assert config == ControllerConfig()
    speed = node.describe_parameter("max_linear_speed")
    assert speed.read_only and "m/s" in speed.description
    assert (speed.floating_point_range[0].from_value, speed.floating_point_range[0].to_value) == (0.0, 3.0)
    assert node.get_parameter("workspace.min").value == list(ControllerConfig().workspace.min)
    refused = node.set_parameters([Parameter("robot_ip", value="127.0.0.99")])[0]
    assert not refused.successful and "read-only" in refused.reason


def test_overrides_apply_to_nested_keys_and_are_validated(make_node):
    node = make_node("controller_override", **{"workspace.max": [0.7, 0.4, 0.6], "max_linear_speed": 0.1})
    config = load_node_config(node, "controller", ControllerConfig)
    assert config.workspace.max == (0.7, 0.4, 0.6) and config.max_linear_speed == 0.1

    with pytest.raises(ConfigError, match="parameter 'max_linear_speed'.*out of range"):
        load_node_config(make_node("controller_too_fast", max_linear_speed=9.0), "controller", ControllerConfig)
    with pytest.raises(ConfigError, match="workspace"):
        load_node_config(make_node("controller_box", **{"workspace.min": [0.9, 0.0, 0.0]}), "controller", ControllerConfig)


def test_lists_of_models_travel_as_yaml(make_node):
    node = make_node("sim_world_params", cameras="[{name: top, width: 64, height: 48}]", seed=7)
    config = load_node_config(node, "sim_world", SimWorldConfig)
    assert [c.name for c in config.cameras] == ["top"] and config.cameras[0].width == 64 and config.seed == 7
