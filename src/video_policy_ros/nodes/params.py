"""ROS parameters ↔ validated pydantic config, the same way for every node; and the shared ``main()``.

A node has a ``config_file`` parameter (its YAML, default: the installed one) and one
declared parameter per key of its config model — nested models as dotted names
(``workspace.min``), lists of models as one YAML string. Each parameter carries the
field's description and range and starts at the YAML's value, so ``ros2 param
describe/get`` shows what the node really runs with; a parameter set on the command
line or by launch overrides the YAML. All of them are read-only: the node builds its
core objects once from the validated config, so a change at run time would be
accepted by ROS and silently ignored.
"""

from __future__ import annotations

import faulthandler
import logging
import sys
from pathlib import Path
from typing import Any, TypeVar

import annotated_types
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import ParameterException
from rclpy.node import Node

from video_policy_ros.config import ConfigError, build_config, default_config_path, read_yaml
from video_policy_ros.errors import StackError
from video_policy_ros.nodes.base import configure_process
from video_policy_ros.nodes.signals import ignore_further_signals, take_shutdown_signals

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

_FLOAT_MAX = sys.float_info.max
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _to_parameter(value: Any) -> Any:
    """A config value as a ROS parameter value (None: not set)."""
    if isinstance(value, BaseModel):
        return yaml.safe_dump(value.model_dump(mode="json"), default_flow_style=True).strip()
    if isinstance(value, (list, tuple)):
        if any(isinstance(v, BaseModel) for v in value):
            return yaml.safe_dump([v.model_dump(mode="json") for v in value], default_flow_style=True).strip()
        return [_to_parameter(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _from_parameter(value: Any, field: FieldInfo) -> Any:
    """Undo :func:`_to_parameter` for fields carried as a YAML string."""
    if isinstance(value, str) and _carried_as_yaml(field):
        return yaml.safe_load(value)
    return list(value) if isinstance(value, (list, tuple)) else value


def _carried_as_yaml(field: FieldInfo) -> bool:
    args = getattr(field.annotation, "__args__", ())
    return any(_is_model(a) for a in args) or _is_model(field.annotation)


def _descriptor(name: str, field: FieldInfo) -> ParameterDescriptor:
    low = high = None
    for rule in field.metadata:
        if isinstance(rule, (annotated_types.Ge, annotated_types.Gt)):
            low = getattr(rule, "ge", getattr(rule, "gt", None))
        elif isinstance(rule, (annotated_types.Le, annotated_types.Lt)):
            high = getattr(rule, "le", getattr(rule, "lt", None))
    descriptor = ParameterDescriptor(
        name=name, description=field.description or "", read_only=True, dynamic_typing=True,
    )
    if low is not None or high is not None:
        if int in (field.annotation, *getattr(field.annotation, "__args__", ())):
            descriptor.integer_range = [IntegerRange(
                from_value=int(low if low is not None else _INT_MIN), to_value=int(high if high is not None else _INT_MAX))]
        else:
            descriptor.floating_point_range = [FloatingPointRange(
                from_value=float(low if low is not None else -_FLOAT_MAX),
                to_value=float(high if high is not None else _FLOAT_MAX))]
    return descriptor


def _parameters(model: type[BaseModel], config: BaseModel, prefix: str = ""):
    """(dotted name, field, current value) for every key of ``model``, nested models flattened."""
    for key, field in model.model_fields.items():
        value = getattr(config, key)
        if _is_model(field.annotation):
            yield from _parameters(field.annotation, value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", field, value


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        target = nested
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return nested


def load_node_config(node: Node, node_kind: str, model: type[ModelT]) -> ModelT:
    """The node's YAML validated, then every key declared as a parameter, then overrides applied."""
    config_file = node.declare_parameter(
        "config_file", str(default_config_path(node_kind)),
        ParameterDescriptor(description=f"{node_kind} YAML file (mirrors config.{model.__name__})", read_only=True),
    ).value
    from_file = build_config(model, read_yaml(config_file), config_file)
    values: dict[str, Any] = {}
    for name, field, value in _parameters(model, from_file):
        try:
            parameter = node.declare_parameter(name, _to_parameter(value), _descriptor(name, field))
        except ParameterException as exc:  # out of range, wrong type: say which parameter
            raise ConfigError(f"parameter '{name}': {exc}") from None
        values[name] = None if parameter.value is None else _from_parameter(parameter.value, field)
    return build_config(model, _nest(values), f"{config_file} (+ parameters)")


# ros2 launch escalates to SIGTERM 5 s after its SIGINT, and to SIGKILL 10 s later.
SHUTDOWN_DEADLINE_S = 4.0


def run_node(node_factory, args: list[str] | None = None) -> int:
    """Shared ``main()``: init rclpy, build the node, spin until a signal or the node's ``exit_code``.

    Errors the user must fix (bad config, unreachable robot, ...) exit 2 with one line.
    """
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    shutdown = take_shutdown_signals()
    configure_process()
    if shutdown.is_set():  # stopped while still starting
        return 0
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    node = None
    try:
        node = node_factory()
        logging.getLogger().setLevel(_python_level(node))
        executor = MultiThreadedExecutor(num_threads=3)
        executor.add_node(node)
        while not shutdown.is_set() and node.exit_code is None:
            executor.spin_once(timeout_sec=0.1)
        return node.exit_code or 0
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    finally:
        # A node that cannot stop must not linger until launch's SIGKILL: past the deadline, faulthandler's own
        # thread (it needs no GIL) writes every thread's stack to stderr and ends the process with exit code 1.
        faulthandler.dump_traceback_later(SHUTDOWN_DEADLINE_S, exit=True)
        if node is not None:
            node.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        faulthandler.cancel_dump_traceback_later()
        ignore_further_signals()


def _python_level(node: Node) -> int:
    """The Python loggers of the cores follow the node's ``--log-level``."""
    from rclpy.logging import LoggingSeverity

    severity = LoggingSeverity(node.get_logger().get_effective_level())
    return {
        LoggingSeverity.DEBUG: logging.DEBUG, LoggingSeverity.WARN: logging.WARNING,
        LoggingSeverity.ERROR: logging.ERROR, LoggingSeverity.FATAL: logging.CRITICAL,
    }.get(severity, logging.INFO)
