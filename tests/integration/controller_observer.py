"""What a test process sees of the controller through the topic contract, and how it drives it.

``observer_node`` spins a node in its own rclpy context that records /ee_pose,
/joint_states, /controller/command and the controller's /diagnostics, and gives a
``Driver`` that publishes chunks and e-stops and calls the reset service.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.types import ActionChunk


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Observer:
    """Everything the test process saw, as (receive time, header stamp, value)."""

    poses: list[tuple[float, float, np.ndarray]] = field(default_factory=list)
    joint_speeds: list[tuple[float, float]] = field(default_factory=list)  # receive, max |joint velocity|
    fingers: list[tuple[float, float]] = field(default_factory=list)  # receive, fr3_finger_joint1 (m)
    commands: list[tuple[float, np.ndarray]] = field(default_factory=list)  # stamp, twist
    diagnostics: list[tuple[float, str, dict[str, str]]] = field(default_factory=list)
    events: dict[str, object] = field(default_factory=dict)

    def pose_now(self) -> np.ndarray:
        return self.poses[-1][2]

    def value(self, key: str) -> str:
        """The latest value of ``key`` in the controller's diagnostics ("" if never reported)."""
        return next((values[key] for _, _, values in reversed(self.diagnostics) if key in values), "")

    def counter(self, key: str) -> int:
        return int(self.value(key) or 0)

    def poses_between(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        kept = [(s, p[:3]) for r, s, p in self.poses if t0 <= r <= t1]
        return np.array([s for s, _ in kept]), np.array([p for _, p in kept])

    def max_joint_speed(self, t0: float, t1: float) -> float:
        return max(s for r, s in self.joint_speeds if t0 <= r <= t1)


class Driver:
    """Publishes chunks and e-stops like inference and an operator would."""

    def __init__(self, node, observer: Observer):
        self.obs = observer
        self.chunks = node.create_publisher(MultiDOFJointTrajectory, "/policy/action_chunk", 10)
        self.grippers = node.create_publisher(JointTrajectory, "/policy/gripper_chunk", 10)
        self.estop_pub = node.create_publisher(Bool, "/controller/estop", 10)
        self.reset_client = node.create_client(Trigger, "/controller/reset")

    def send(self, chunk: ActionChunk) -> None:
        poses, gripper = conv.chunk_to_msgs(chunk)
        self.grippers.publish(gripper)
        self.chunks.publish(poses)

    def line(self, target, speed: float, dt: float = 0.1, stamp: float | None = None) -> ActionChunk:
        start = self.obs.pose_now()
        distance = float(np.linalg.norm(np.subtract(target, start[:3])))
        n = max(1, int(np.ceil(distance / (speed * dt))))
        s = np.linspace(1 / n, 1, n)[:, None]
        poses = np.hstack([start[:3] + s * (np.asarray(target) - start[:3]), np.tile(start[3:], (n, 1))])
        return ActionChunk(time.time() if stamp is None else stamp, dt, poses, np.full(n, 0.04))

    def go(self, target, speed: float) -> tuple[float, float]:
        """Send one line chunk and wait until the TCP is there; (sent, arrived) receive times."""
        sent = time.time()
        self.send(self.line(target, speed))
        try:
            wait_for(lambda: np.linalg.norm(self.obs.pose_now()[:3] - target) < 0.004, 15, f"the TCP to reach {target}")
        except AssertionError as exc:
            status = self.obs.diagnostics[-1] if self.obs.diagnostics else None
            raise AssertionError(f"{exc}; TCP at {self.obs.pose_now()[:3].round(4)}, controller: {status}") from None
        time.sleep(0.3)
        return sent, time.time()

    def reset(self) -> Trigger.Response:
        assert self.reset_client.wait_for_service(timeout_sec=5.0)
        future = self.reset_client.call_async(Trigger.Request())
        wait_for(future.done, 10, "the reset service")
        return future.result()


@contextmanager
def observer_node(name: str):
    """Yields (Observer, Driver) while a node records the controller's topics."""
    obs = Observer()
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(name, context=context)
    node.create_subscription(
        PoseStamped, "/ee_pose", lambda m: obs.poses.append((time.time(), conv.from_time(m.header.stamp), conv.pose_from_msg(m))), 50
    )
    def on_joint_states(m: JointState) -> None:
        obs.joint_speeds.append((time.time(), float(np.max(np.abs(m.velocity[:7])))))
        obs.fingers.append((time.time(), float(m.position[7])))

    node.create_subscription(JointState, "/joint_states", on_joint_states, 50)
    node.create_subscription(
        TwistStamped, "/controller/command",
        lambda m: obs.commands.append((conv.from_time(m.header.stamp), np.array([m.twist.linear.x, m.twist.linear.y, m.twist.linear.z]))), 50,
    )

    def on_diagnostics(msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == "controller":
                obs.diagnostics.append((time.time(), status.message, {kv.key: kv.value for kv in status.values}))

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 50)
    driver = Driver(node, obs)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        yield obs, driver
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
