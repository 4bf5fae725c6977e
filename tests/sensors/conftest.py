"""Fixtures for the sensor tests: small real video files and a real rclpy context.

(tests/conftest.py keeps DDS on this machine, in a domain of this process's own.)
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

VIDEO_SIZE = (64, 48)  # width, height


def write_video(path: Path, colors_rgb: list[tuple[int, int, int]], fps: float = 30.0) -> Path:
    """One frame per colour; MJPG in AVI is written by every OpenCV build."""
    width, height = VIDEO_SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for rgb in colors_rgb:
        writer.write(np.full((height, width, 3), rgb[::-1], np.uint8))  # VideoWriter takes BGR
    writer.release()
    return path


@pytest.fixture
def video_size() -> tuple[int, int]:
    """(width, height) of the videos ``video_file`` writes."""
    return VIDEO_SIZE


@pytest.fixture
def video_file(tmp_path):
    """``video_file(colors_rgb, name=...)`` → path of a freshly written video."""
    return lambda colors_rgb, name="camera.avi": write_video(tmp_path / name, colors_rgb)


class RosGraph:
    """Nodes in one rclpy context, spun by one executor from the test thread."""

    def __init__(self, context):
        from rclpy.executors import SingleThreadedExecutor

        self.context = context
        self.executor = SingleThreadedExecutor(context=context)
        self.nodes = []

    def add(self, node):
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def spin_until(self, condition, timeout_s: float = 3.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            self.executor.spin_once(timeout_sec=0.02)
        return True

    def close(self) -> None:
        for node in self.nodes:
            getattr(node, "close", lambda: None)()
            node.destroy_node()
        self.executor.shutdown()


@pytest.fixture
def ros_graph():
    import rclpy
    from video_policy_ros.nodes.base import private_context

    context = private_context()
    graph = RosGraph(context)
    try:
        yield graph
    finally:
        graph.close()
        rclpy.shutdown(context=context)
