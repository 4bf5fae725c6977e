"""What every node of the stack shares: a way to ask ``run_node`` to exit, and ``close()``."""

from __future__ import annotations

from rclpy.node import Node


class StackNode(Node):
    #: Set by a node to end its process with this code (None: keep spinning).
    exit_code: int | None = None

    def close(self) -> None:
        """Release hardware and threads; called once before the node is destroyed."""
