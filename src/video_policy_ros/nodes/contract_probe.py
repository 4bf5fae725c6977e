"""The controller seen and driven from outside, through the topic contract only (preflight, tests).

``observer_node`` spins a node in its own rclpy context that records /ee_pose,
/joint_states, /controller/command and the controller's /diagnostics into an
``Observations``, and gives a ``Driver`` that publishes chunks and e-stops and calls the
reset service, as inference and an operator would.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory, MultiDOFJointTrajectoryPoint

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.preflight.observations import Observations, wait_for
from video_policy_ros.types import ActionChunk
from video_policy_ros.nodes.base import private_context

MAX_POINT_SPACING_M = 0.02


class Driver:
    """Publishes chunks and e-stops like inference and an operator would."""

    def __init__(self, node, observer: Observations):
        self.obs = observer
        self.chunks = node.create_publisher(MultiDOFJointTrajectory, "/policy/action_chunk", 10)
        self.grippers = node.create_publisher(JointTrajectory, "/policy/gripper_chunk", 10)
        self.estop_pub = node.create_publisher(Bool, "/controller/estop", 10)
        self.reset_client = node.create_client(Trigger, "/controller/reset")
        self.occlude_client = node.create_client(SetBool, "/sim_world/occlude_cameras")
        self.divergence_pub = node.create_publisher(Float32, "/policy/divergence", 10)

    def send(self, chunk: ActionChunk) -> None:
        poses, gripper = conv.chunk_to_msgs(chunk)
        self.grippers.publish(gripper)
        self.chunks.publish(poses)

    def send_malformed(self) -> None:
        """A chunk message no chunk converts from (an unknown joint, a point without poses)."""
        self.chunks.publish(MultiDOFJointTrajectory(joint_names=["not_the_tcp"], points=[MultiDOFJointTrajectoryPoint()]))

    def line(self, target, speed: float, dt: float = 0.1, stamp: float | None = None, start=None) -> ActionChunk:
        """A straight chunk from the measured pose (or the position ``start``) to ``target`` at ``speed``;
        points at most ``dt`` and ``MAX_POINT_SPACING_M`` apart (a fast line in 0.1 s steps would start
        with a jump)."""
        here = self.obs.pose_now()
        start = here if start is None else np.concatenate([start, here[3:]])
        distance = float(np.linalg.norm(np.subtract(target, start[:3])))
        n = max(1, int(np.ceil(distance / (speed * dt))), int(np.ceil(distance / MAX_POINT_SPACING_M)))
        step_s = distance / (n * speed) if distance > 0 else dt
        s = np.linspace(1 / n, 1, n)[:, None]
        poses = np.hstack([start[:3] + s * (np.asarray(target) - start[:3]), np.tile(start[3:], (n, 1))])
        return ActionChunk(time.time() if stamp is None else stamp, step_s, poses, np.full(n, 0.04))

    def go(self, target, speed: float) -> tuple[float, float]:
        """Send one line chunk and wait until the TCP is there; (sent, arrived) receive times."""
        sent = time.time()
        self.send(self.line(target, speed))
        try:
            wait_for(lambda: np.linalg.norm(self.obs.pose_now()[:3] - target) < 0.004, 15, f"the TCP to reach {target}")
        except TimeoutError as exc:
            status = self.obs.diagnostics[-1] if self.obs.diagnostics else None
            raise TimeoutError(f"{exc}; TCP at {self.obs.pose_now()[:3].round(4)}, controller: {status}") from None
        time.sleep(0.3)
        return sent, time.time()

    def estop(self) -> None:
        self.estop_pub.publish(Bool(data=True))

    def send_divergence(self, value: float) -> None:
        """One prediction's divergence, as the inference node reports it."""
        self.divergence_pub.publish(Float32(data=float(value)))

    def occlude_cameras(self, occluded: bool) -> None:
        """The sim world's intervention: every lens covered, or uncovered."""
        if not self.occlude_client.wait_for_service(timeout_sec=5.0):
            raise TimeoutError("timed out after 5 s waiting for the /sim_world/occlude_cameras service")
        future = self.occlude_client.call_async(SetBool.Request(data=occluded))
        wait_for(future.done, 10, "the occlude_cameras service")

    def reset(self) -> tuple[bool, str]:
        """Call /controller/reset; (success, message)."""
        if not self.reset_client.wait_for_service(timeout_sec=5.0):
            raise TimeoutError("timed out after 5 s waiting for the /controller/reset service")
        future = self.reset_client.call_async(Trigger.Request())
        wait_for(future.done, 10, "the reset service")
        return future.result().success, future.result().message


@contextmanager
def observer_node(name: str, record: bool = True):
    """Yields (Observations, Driver) while a node records the controller's topics. With ``record=False``
    the node only drives (its Observations stay empty): a caller that needs nothing but the Driver leaves
    the CPU to the graph instead of taking /ee_pose and /joint_states at the loop rate in Python."""
    obs = Observations()
    context = private_context()
    node = rclpy.create_node(name, context=context)
    if record:
        _record(node, obs)
    driver = Driver(node, obs)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        yield obs, driver
    finally:
        executor.shutdown()
        spinner.join(timeout=5.0)  # no callback may run while the node goes away
        node.destroy_node()
        rclpy.shutdown(context=context)


def _record(node, obs: Observations) -> None:
    """The controller's topics into ``obs``."""
    node.create_subscription(
        PoseStamped, "/ee_pose", lambda m: obs.poses.append((time.time(), conv.from_time(m.header.stamp), conv.pose_from_msg(m))), 50
    )
    def on_joint_states(m: JointState) -> None:
        obs.joint_states.append((conv.from_time(m.header.stamp), np.asarray(m.position[:7]), np.asarray(m.velocity[:7])))
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
    node.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", lambda _: obs.chunk_arrivals.append(time.time()), 10)
    node.create_subscription(Float32, "/policy/divergence", lambda m: obs.divergences.append((time.time(), m.data)), 10)
