"""ROS parameters → validated pydantic config, the same way for every node.

A node has a ``config_file`` parameter (its YAML, default: the installed one) and
one parameter per top-level scalar key of its config model; a parameter set on
the command line or by launch overrides the YAML. pydantic validates the result,
so a bad value fails with a one-line error naming the key.
"""

from __future__ import annotations

import logging
import sys
from typing import TypeVar

from pydantic import BaseModel
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from video_policy_ros.config import default_config_path, load_yaml
from video_policy_ros.nodes.base import configure_process
from video_policy_ros.errors import StackError

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_node_config(node: Node, node_kind: str, model: type[ModelT], overridable: tuple[str, ...]) -> ModelT:
    """``overridable``: the top-level keys that launch arguments may set as parameters."""
    descriptor = ParameterDescriptor(dynamic_typing=True)
    config_file = node.declare_parameter("config_file", str(default_config_path(node_kind))).value
    overrides = {}
    for name in overridable:
        value = node.declare_parameter(name, None, descriptor).value
        if value is not None and value != "":
            overrides[name] = list(value) if isinstance(value, (list, tuple)) else value
    return load_yaml(model, config_file, overrides)


def run_node(node_factory, args: list[str] | None = None) -> int:
    """Shared ``main()``: init rclpy, build the node, spin until it sets ``exit_code``.

    Errors the user must fix (bad config, unreachable robot, ...) exit 2 with one line.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    logging.basicConfig(level=logging.INFO, format="[%(name)s] %(levelname)s: %(message)s")
    configure_process()
    rclpy.init(args=args)
    node = None
    try:
        node = node_factory()
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        while rclpy.ok() and node.exit_code is None:
            executor.spin_once(timeout_sec=0.1)
        return node.exit_code or 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0

