"""inference node: latest frames + /ee_pose + /task → Policy → action/gripper chunks.

All the logic is in runtime.realtime.RealtimeChunker: the timer only asks it whether the
next chunk is due (real-time chunking) and hands it the freshest observation; the policy
and the video decoder run in worker threads, so callbacks never block.
"""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, String
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory
from visualization_msgs.msg import MarkerArray

from video_policy_ros.config import InferenceConfig
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.nodes.qos import TASK_QOS
from video_policy_ros.policies import build_policy
from video_policy_ros.runtime.divergence import DivergenceMonitor
from video_policy_ros.runtime.observation import CLOCK_PROBLEM, ObservationAssembler
from video_policy_ros.runtime.realtime import ChunkerSettings, RealtimeChunker, warmup_observation
from video_policy_ros.runtime.visualization import filmstrip
from video_policy_ros.types import CameraFrame, PolicyOutput

CONTROLLER_STATUS = "controller"  # the controller's DiagnosticStatus name and its counters
ACCEPTED_KEY, REJECTED_KEY = "chunks_accepted", "chunks_rejected"


class InferenceNode(StackNode):
    def __init__(self, config: InferenceConfig | None = None, **node_kwargs):
        super().__init__("inference", **node_kwargs)
        self.config = config or load_node_config(self, "inference", InferenceConfig)
        c = self.config
        self.policy = build_policy(c)
        self.assembler = ObservationAssembler(
            c.cameras, c.max_observation_age_s, c.default_instruction, sync_tolerance_s=c.frame_sync_tolerance_s
        )
        self._action_pub = self.create_publisher(MultiDOFJointTrajectory, "/policy/action_chunk", 10)
        self._gripper_pub = self.create_publisher(JointTrajectory, "/policy/gripper_chunk", 10)
        self._path_pub = self.create_publisher(MarkerArray, "/policy/predicted_path", 10)
        self._video_pubs = {
            cam: self.create_publisher(Image, f"/policy/predicted_video/{cam}", qos_profile_sensor_data)
            for cam in c.cameras
        }
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        # A policy that predicts video: its predictions are compared with what the cameras then see.
        self._frame_period_s = getattr(self.policy, "predicted_frame_period_s", None)
        self._divergence = (DivergenceMonitor(self.policy.predicted_frame_size, self.policy.predicted_frame_crops)
                            if self._frame_period_s else None)
        self._divergence_pub = self.create_publisher(Float32, "/policy/divergence", 10)
        self._last_divergence: float | None = None
        compressed = c.image_transport == "compressed"
        for cam in c.cameras:
            self.create_subscription(
                CompressedImage if compressed else Image, f"/cameras/{cam}/image_raw{'/compressed' if compressed else ''}",
                lambda msg, cam=cam: self._on_image(cam, msg), qos_profile_sensor_data
            )
        self._clock_problem_logged = False
        self.create_subscription(PoseStamped, "/ee_pose", self._on_pose, 10)
        self.create_subscription(JointState, "/joint_states", self._on_joints, 10)
        self.create_subscription(String, "/task", self._on_task, TASK_QOS)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        settings = ChunkerSettings(
            realtime=c.realtime_chunking, execute_horizon_s=c.execute_horizon_s, margin_s=c.latency_margin_s,
            warmup_calls=c.warmup_calls, auto_steps=c.num_steps == "auto", video_period_s=1.0 / c.predicted_video_rate_hz,
            max_input_age_s=c.max_observation_age_s, guidance=getattr(self.policy, "guidance", None),
            sampler=getattr(self.policy, "sampler", None),
        )
        self.chunker = RealtimeChunker(self.policy, settings, self._publish_chunk, self._publish_video)
        self.chunker.start(warmup_observation(self.policy, c.cameras, c.default_instruction, time.time()))
        self.create_timer(1.0 / c.rate_hz, self._tick)
        self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info(f"policy: {self.policy.description}; cameras {list(c.cameras)}; real-time chunking "
                               f"{'on' if c.realtime_chunking else 'off'}; warming up")

    # ---------------------------------------------------------------- inputs

    def _on_image(self, camera: str, msg: Image | CompressedImage) -> None:
        received = time.time()
        try:
            frame = (conv.frame_from_compressed_msg if isinstance(msg, CompressedImage) else conv.frame_from_msg)(camera, msg)
            self.assembler.add_frame(frame, received_at=received)
        except conv.MessageError as exc:
            self.get_logger().error(str(exc), throttle_duration_sec=5.0)
            return
        if self._divergence is not None:
            self._report_divergence(self._divergence.add_frame(camera, frame.stamp, frame.image))

    def _report_divergence(self, results: list[tuple[float, float]]) -> None:
        for _, value in results:
            self._last_divergence = value
            if self.context.ok():
                self._divergence_pub.publish(Float32(data=value))

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

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name == CONTROLLER_STATUS:
                values = {kv.key: kv.value for kv in status.values}
                if ACCEPTED_KEY in values and REJECTED_KEY in values:
                    self.chunker.health.downstream.update(int(values[ACCEPTED_KEY]), int(values[REJECTED_KEY]))

    def _tick(self) -> None:
        self.chunker.tick(self.assembler.build)
        problem = self.chunker.health.input_problem
        clock_problem = bool(problem) and problem.startswith(CLOCK_PROBLEM)
        if clock_problem and not self._clock_problem_logged:  # one error line, not a warning every 5 s
            self.get_logger().error(problem)
            self._clock_problem_logged = True  # until the inputs are fine again (frames may pause in between)
        elif problem and not clock_problem:
            self.get_logger().warning(f"waiting for input: {problem}", throttle_duration_sec=5.0)
        elif not problem:
            self._clock_problem_logged = False

    # ---------------------------------------------------------------- outputs (worker threads)

    def _publish_chunk(self, output: PolicyOutput) -> None:
        if not self.context.ok():  # shutting down: the worker outlives the context briefly
            return
        poses, gripper = conv.chunk_to_msgs(output.chunk)
        self._gripper_pub.publish(gripper)  # first, so the controller can pair it with the poses
        self._action_pub.publish(poses)
        self._path_pub.publish(conv.path_markers(output.chunk))
        if output.predicted_frames:
            self._publish_video(output.chunk.stamp, output.predicted_frames)

    def _publish_video(self, stamp: float, frames_by_camera: dict) -> None:
        """One filmstrip per camera, stamped with the observation the prediction starts from."""
        if not self.context.ok():
            return
        if self._divergence is not None:
            self._report_divergence(self._divergence.add_prediction(stamp, self._frame_period_s, frames_by_camera))
        for cam, frames in frames_by_camera.items():
            if cam in self._video_pubs:
                self._video_pubs[cam].publish(conv.image_to_msg(CameraFrame(cam, stamp, filmstrip(frames))))

    def _publish_diagnostics(self) -> None:
        level, message, values = self.chunker.status()
        values = {**values, **self.assembler.sync_statistics().as_diagnostic_values(),
                  **{f"{cam}_arrival_minus_stamp_ms": f"{offset * 1e3:.1f}" for cam, offset in self.assembler.clock_offsets().items()}}
        if self._last_divergence is not None:
            values["divergence"] = f"{self._last_divergence:.4g}"
        if self._frame_period_s:  # how to read the filmstrips on /policy/predicted_video/<name>
            height, width = self.policy.predicted_frame_size
            values.update(predicted_frame_size=f"{height}x{width}", predicted_frame_period_ms=f"{self._frame_period_s * 1e3:.0f}")
        status = conv.diagnostic_status("inference", self.policy.description, level, message, values)
        self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self.chunker.close()


def main(args: list[str] | None = None) -> int:
    return run_node(InferenceNode, args)
