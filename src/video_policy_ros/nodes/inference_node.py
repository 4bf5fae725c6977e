"""inference node: latest frames + /ee_pose + /task → Policy → action/gripper chunks.

The policy runs in AsyncPolicyRunner's worker thread, so callbacks never block;
the timer only assembles the freshest observation and hands it over.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from video_policy_ros.nodes.base import StackNode
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory
from visualization_msgs.msg import MarkerArray

from video_policy_ros.config import InferenceConfig
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.nodes.qos import TASK_QOS
from video_policy_ros.policies import build_policy
from video_policy_ros.runtime.async_worker import AsyncPolicyRunner
from video_policy_ros.runtime.observation import ObservationAssembler
from video_policy_ros.runtime.visualization import filmstrip
from video_policy_ros.types import CameraFrame, PolicyOutput


class InferenceNode(StackNode):
    def __init__(self, config: InferenceConfig | None = None, **node_kwargs):
        super().__init__("inference", **node_kwargs)
        self.config = config or load_node_config(self, "inference", InferenceConfig)
        self.policy = build_policy(self.config)
        self.assembler = ObservationAssembler(
            self.config.cameras, self.config.max_observation_age_s, self.config.default_instruction
        )
        self._action_pub = self.create_publisher(MultiDOFJointTrajectory, "/policy/action_chunk", 10)
        self._gripper_pub = self.create_publisher(JointTrajectory, "/policy/gripper_chunk", 10)
        self._path_pub = self.create_publisher(MarkerArray, "/policy/predicted_path", 10)
        self._video_pubs = {
            cam: self.create_publisher(Image, f"/policy/predicted_video/{cam}", qos_profile_sensor_data)
            for cam in self.config.cameras
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        for cam in self.config.cameras:
            self.create_subscription(
                Image, f"/cameras/{cam}/image_raw", lambda msg, cam=cam: self._on_image(cam, msg), qos_profile_sensor_data
            )
        self.create_subscription(PoseStamped, "/ee_pose", self._on_pose, 10)
        self.create_subscription(JointState, "/joint_states", self._on_joints, 10)
        self.create_subscription(String, "/task", self._on_task, TASK_QOS)
        self.runner = AsyncPolicyRunner(self.policy, self._publish_output, self._on_policy_error)
        self._latencies: list[float] = []
        self._chunks = 0
        self.create_timer(1.0 / self.config.rate_hz, self._request_chunk)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"policy: {self.policy.description}; cameras {list(self.config.cameras)}")

    # ---------------------------------------------------------------- inputs

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            self.assembler.add_frame(conv.frame_from_msg(camera, msg))
        except conv.MessageError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)

    def _on_pose(self, msg: PoseStamped) -> None:
        self.assembler.set_tcp_pose(conv.from_time(msg.header.stamp), conv.pose_from_msg(msg))

    def _on_joints(self, msg: JointState) -> None:
        gripper = conv.gripper_from_joint_state(msg)
        if gripper is not None:
            self.assembler.set_gripper(gripper)

    def _on_task(self, msg: String) -> None:
        if self.assembler.set_instruction(msg.data):
            self.policy.reset()
            self.get_logger().info(f"task: {msg.data}")

    def _request_chunk(self) -> None:
        if self.runner.busy:
            return  # the worker is still on the previous observation; skip, do not queue
        observation, problem = self.assembler.build(time.time())
        if observation is None:
            self.get_logger().warning(f"waiting for input: {problem}", throttle_duration_sec=5.0)
            return
        self.runner.submit(observation)

    # ---------------------------------------------------------------- outputs (worker thread)

    def _publish_output(self, output: PolicyOutput, latency_s: float) -> None:
        if not self.context.ok():  # shutting down: the worker outlives the context briefly
            return
        poses, gripper = conv.chunk_to_msgs(output.chunk)
        self._gripper_pub.publish(gripper)  # first, so the controller can pair it with the poses
        self._action_pub.publish(poses)
        self._path_pub.publish(conv.path_markers(output.chunk))
        for cam, frames in (output.predicted_frames or {}).items():
            if cam in self._video_pubs:  # one filmstrip per chunk: RViz shows the whole prediction at once
                strip = CameraFrame(cam, output.chunk.stamp, filmstrip(frames))
                self._video_pubs[cam].publish(conv.image_to_msg(strip))
        self._latencies = (self._latencies + [latency_s])[-50:]
        self._chunks += 1

    def _on_policy_error(self, exc: Exception) -> None:
        self.get_logger().error(f"policy failed, no chunk published: {type(exc).__name__}: {exc}", throttle_duration_sec=2.0)

    def _publish_diagnostics(self) -> None:
        lat = sorted(self._latencies) or [0.0]
        status = conv.diagnostic_status(
            "inference", self.policy.description, "ok", "running",
            {"chunks": self._chunks, "latency_ms_p50": f"{lat[len(lat) // 2] * 1e3:.1f}", "latency_ms_max": f"{lat[-1] * 1e3:.1f}"},
        )
        self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self.runner.close()


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, args)
