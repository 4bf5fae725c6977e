"""What every node of the stack shares: a way to ask ``run_node`` to exit, and ``close()``."""

from __future__ import annotations

import sys

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

GIL_SWITCH_INTERVAL_S = 0.0005


def configure_process() -> None:
    """Process-wide settings for a process that runs nodes.

    Each node has a latency-sensitive thread (control loop, policy worker, renderer) next
    to the executor's callbacks. With Python's default 5 ms GIL switch interval every
    hand-over between them can wait that long: a 0.4 s policy chunk stretched to several
    seconds beside the 200 Hz control loop. 0.5 ms keeps all of them responsive.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


def private_context(args: list[str] | None = None) -> rclpy.Context:
    """An initialised rclpy context of its own, for nodes inside another program (a command, a probe,
    a test). Without ``SignalHandlerOptions.NO``, ``rclpy.init`` installs its signal handlers, whose
    C++ thread only a shutdown of the *default* context removes: left behind, it aborted the process
    at exit ("terminate called without an active exception", exit code -6)."""
    context = rclpy.Context()
    rclpy.init(args=args, context=context, signal_handler_options=SignalHandlerOptions.NO)
    return context


class StackNode(Node):
    #: Set by a node to end its process with this code (None: keep spinning).
    exit_code: int | None = None

    def close(self) -> None:
        """Release hardware and threads; called once before the node is destroyed."""
