"""controller node: executes action chunks on the arm and publishes its state.

All decisions live in control/ (ArmCommander: chunk → command, ControlLoop: the
thread that talks to the arm). This node converts messages and wires topics.
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from video_policy_ros.nodes.base import StackNode
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from video_policy_ros.config import ControllerConfig
from video_policy_ros.control.arm import FrankyArm
from video_policy_ros.control.commander import ArmCommander, ChunkRejected, CommandLimits
from video_policy_ros.control.loop import ControlLoop
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.types import ArmState


def build_control_loop(config: ControllerConfig, on_state) -> ControlLoop:
    arm = FrankyArm(
        config.robot_ip,
        command_timeout_s=config.command_timeout_s,
        relative_dynamics_factor=config.relative_dynamics_factor,
        gripper_speed=config.gripper_speed,
        connect_timeout_s=config.connect_timeout_s,
        realtime=config.realtime,
    )
    limits = CommandLimits(
        max_linear_speed=config.max_linear_speed,
        max_angular_speed=config.max_angular_speed,
        position_gain=config.position_gain,
        workspace_min=np.array(config.workspace.min),
        workspace_max=np.array(config.workspace.max),
    )
    return ControlLoop(arm, ArmCommander(limits), config.loop_rate_hz, on_state)


class ControllerNode(StackNode):
    def __init__(self, config: ControllerConfig | None = None, **node_kwargs):
        super().__init__("controller", **node_kwargs)
        self.config = config or load_node_config(self, "controller", ControllerConfig)
        self._joint_pub = self.create_publisher(JointState, "/joint_states", 10)
        self._pose_pub = self.create_publisher(PoseStamped, "/ee_pose", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._gripper_chunk: JointTrajectory | None = None
        self._rejections = 0
        self.loop = build_control_loop(self.config, self._publish_state)
        self.create_subscription(JointTrajectory, "/policy/gripper_chunk", self._on_gripper_chunk, 10)
        self.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", self._on_action_chunk, 10)
        self.create_subscription(Bool, "/controller/estop", self._on_estop, 10)
        self.create_service(Trigger, "/controller/reset", self._on_reset)
        self.create_timer(1.0, self._publish_diagnostics)
        self.loop.start()
        self.get_logger().info(f"controlling the FR3 at {self.config.robot_ip} at {self.config.loop_rate_hz:.0f} Hz")

    def _publish_state(self, state: ArmState) -> None:  # control thread
        if not self.context.ok():  # shutting down: the control loop outlives the context briefly
            return
        self._joint_pub.publish(conv.joint_state_msg(state))
        self._pose_pub.publish(conv.pose_msg(state.stamp, state.tcp_pose))

    def _on_gripper_chunk(self, msg: JointTrajectory) -> None:
        self._gripper_chunk = msg

    def _on_action_chunk(self, msg: MultiDOFJointTrajectory) -> None:
        state = self.loop.latest_state
        gripper = self._gripper_chunk
        if gripper is not None and gripper.header.stamp != msg.header.stamp:
            gripper = None  # not this chunk's gripper: hold the current opening instead
        try:
            chunk = conv.chunk_from_msgs(msg, gripper, hold_gripper=state.gripper if state else 0.0)
            self.loop.submit_chunk(chunk)
        except (ChunkRejected, conv.MessageError, ValueError) as exc:
            self._rejections += 1
            self.get_logger().warning(f"action chunk rejected: {exc}", throttle_duration_sec=2.0)

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.loop.estop("/controller/estop")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.loop.reset()
        self.get_logger().info(f"reset: {response.message}")
        return response

    def _publish_diagnostics(self) -> None:
        if self.loop.error is not None:
            self.get_logger().fatal(f"control loop crashed: {self.loop.error!r}; the arm halted on its own")
            self.exit_code = 1
        cycles = np.array(self.loop.cycle_times) if self.loop.cycle_times else np.zeros(1)
        reason = self.loop.commander.stopped_reason
        status = conv.diagnostic_status(
            "controller", self.config.robot_ip, "error" if reason else "ok",
            f"stopped: {reason}" if reason else ("executing" if self.loop.commander.active else "holding"),
            {
                "cycle_ms_p50": f"{np.percentile(cycles, 50) * 1e3:.2f}",
                "cycle_ms_max": f"{cycles.max() * 1e3:.2f}",
                "rejected_chunks": self._rejections,
            },
        )
        self._diag_pub.publish(DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self.loop.close()


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args)
