"""What every node of the stack shares: a way to ask ``run_node`` to exit, and ``close()``."""

from __future__ import annotations

import sys

from rclpy.node import Node

GIL_SWITCH_INTERVAL_S = 0.0005


def configure_process() -> None:
    """Process-wide settings for a process that runs nodes.

    Each node has a latency-sensitive thread (control loop, policy worker, renderer) next
    to the executor's callbacks. With Python's default 5 ms GIL switch interval every
    hand-over between them can wait that long: a 0.4 s policy chunk stretched to several
    seconds beside the 200 Hz control loop. 0.5 ms keeps all of them responsive.
    """
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)


class StackNode(Node):
    #: Set by a node to end its process with this code (None: keep spinning).
    exit_code: int | None = None

    def close(self) -> None:
        """Release hardware and threads; called once before the node is destroyed."""
