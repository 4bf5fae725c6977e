"""controller node: executes action chunks on the arm and publishes its state.

All decisions live in control/ (Watchdog: every safety decision, ArmCommander: chunk →
command, ControlLoop: the thread that talks to the arm). This node converts messages
and wires topics. It spins while the control thread connects, so "waiting for the robot"
shows on /diagnostics; when the connection times out the node exits with one error line.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, TwistStamped
from rclpy._rclpy_pybind11 import RCLError
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, MultiDOFJointTrajectory

from video_policy_ros.config import ControllerConfig
from video_policy_ros.control.build import build_control_loop
from video_policy_ros.control.watchdog import ChunkRejected, JointCommand
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.nodes.params import load_node_config, run_node
from video_policy_ros.types import ArmState

DIAGNOSTICS_PERIOD_S = 0.5
STALLED_LOOP_S = 0.5
log = logging.getLogger(__name__)


class ControllerNode(StackNode):
    def __init__(self, config: ControllerConfig | None = None, **node_kwargs):
        super().__init__("controller", **node_kwargs)
        self.config = config or load_node_config(self, "controller", ControllerConfig)
        self._joint_pub = self.create_publisher(JointState, "/joint_states", 10)
        self._pose_pub = self.create_publisher(PoseStamped, "/ee_pose", 10)
        self._command_pub = self.create_publisher(TwistStamped, "/controller/command", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._gripper_chunk: JointTrajectory | None = None
        self._last_rejection = ""
        self._publish_failures, self._last_publish_failure = 0, ""
        self.loop = build_control_loop(self.config, self._publish_state, self._publish_command)
        self.create_subscription(JointTrajectory, "/policy/gripper_chunk", self._on_gripper_chunk, 10)
        self.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", self._on_action_chunk, 10)
        self.create_subscription(Bool, "/controller/estop", self._on_estop, 10)
        self.create_subscription(Float32, "/policy/divergence", self._on_divergence, 10)
        self.create_service(Trigger, "/controller/reset", self._on_reset)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics)
        self.loop.start()
        self.get_logger().info(f"connecting to the FR3 at {self.config.robot_ip}; control at {self.config.loop_rate_hz:.0f} Hz")

    # ------------------------------------------------------------------ control thread → topics

    def _publish_state(self, state: ArmState) -> None:
        self._publish(self._joint_pub, conv.joint_state_msg(state))
        self._publish(self._pose_pub, conv.pose_msg(state.stamp, state.tcp_pose))

    def _publish_command(self, command: JointCommand) -> None:
        self._publish(self._command_pub, conv.twist_msg(command.stamp, command.twist))

    def _publish(self, publisher, msg) -> None:
        """From the control thread. A message that cannot go out is no robot error: the arm is still under
        control, and a consumer that misses the state stops on its own staleness checks (the inference node
        sends no chunk, the controller then halts on the silence). Fast DDS failed one such write under load
        ("cannot publish data", cause not isolated) and a stop was latched on it. Nor is a context that goes
        away between a check and the publish, at shutdown."""
        if not self.context.ok():
            return
        try:
            publisher.publish(msg)
        except RCLError as exc:
            if self.context.ok():
                self._publish_failures += 1
                self._last_publish_failure = f"{publisher.topic_name}: {exc}"
                self.get_logger().warning(f"could not publish {self._last_publish_failure} "
                                          f"({self._publish_failures} in all)", throttle_duration_sec=2.0)

    # ------------------------------------------------------------------ topics → control core

    def _on_gripper_chunk(self, msg: JointTrajectory) -> None:
        self._gripper_chunk = msg

    def _on_action_chunk(self, msg: MultiDOFJointTrajectory) -> None:
        state = self.loop.latest_state
        gripper = self._gripper_chunk
        if gripper is not None and gripper.header.stamp != msg.header.stamp:
            gripper = None  # not this chunk's gripper: hold the current opening instead
        try:
            try:
                chunk = conv.chunk_from_msgs(msg, gripper, hold_gripper=state.gripper if state else 0.0)
            except (conv.MessageError, ValueError, IndexError, AttributeError) as exc:
                raise self.loop.reject("malformed", f"malformed message: {exc}") from None
            self.loop.submit_chunk(chunk)
        except ChunkRejected as exc:
            self._last_rejection = f"rejected a chunk ({exc.reason}): {exc}"
            self.get_logger().warning(self._last_rejection, throttle_duration_sec=2.0)
            self._publish_diagnostics()

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.loop.estop("/controller/estop")
            self._publish_diagnostics()

    def _on_divergence(self, msg: Float32) -> None:
        if self.loop.divergence(float(msg.data)):
            self._publish_diagnostics()

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.loop.reset()
        self.get_logger().info(f"reset: {response.message}")
        return response

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self) -> None:
        if self.loop.fatal is not None:
            if self.exit_code is None:  # the one line run_node prints for errors the user must fix
                print(f"error: {self.loop.fatal}", file=sys.stderr)
                self.exit_code = 2
            return
        watchdog = self.loop.watchdog
        stopped = watchdog.stop_message
        stalled = time.monotonic() - (self.loop.last_cycle_end or time.monotonic())
        arm = self.loop.arm
        gripper_fault = arm.gripper_fault if arm is not None else None
        if self.loop.latest_state is None:
            level, message = "warn", self.loop.status
        elif stalled > STALLED_LOOP_S:
            level, message = "error", f"control loop stalled for {stalled:.1f} s (a robot call is blocking)"
        elif stopped:
            level, message = "error", f"stopped: {stopped}"
        elif gripper_fault:
            level, message = "error", f"gripper: {gripper_fault}"
        elif watchdog.speed_scale < 1.0:
            level, message = "warn", (f"slowed: TCP speed caps x{watchdog.speed_scale:g}, the camera does not match the "
                                      f"predicted video (divergence {watchdog.last_divergence:.4g} > {watchdog.guard.threshold:g})")
        else:
            level, message = "ok", "executing" if self.loop.commander.active else "holding"
        cycles = np.array(self.loop.cycle_times) if self.loop.cycle_times else np.zeros(1)
        values = {
            "cycle_ms_p50": f"{np.percentile(cycles, 50) * 1e3:.2f}",
            "cycle_ms_max": f"{cycles.max() * 1e3:.2f}",
            "last_rejection": self._last_rejection,
            "last_stop": self.loop.last_stop,
            "gripper": gripper_fault or "ok",
            "divergence": "" if watchdog.last_divergence is None else f"{watchdog.last_divergence:.4g}",
            "speed_scale": f"{watchdog.speed_scale:g}",
            "limits": watchdog.limits_in_force(),
            "workspace_m": ",".join(f"{v:g}" for v in (*watchdog.limits.workspace_min, *watchdog.limits.workspace_max)),
            # With the cameras on this PC: the inference latency; a negative value means another clock stamped it.
            "chunk_age_ms": "" if watchdog.last_chunk_age is None else f"{watchdog.last_chunk_age * 1e3:.0f}",
            # Below 1: a simulated FR3 running slower than real time (a loaded machine); its halts take longer.
            "robot_time_factor": "" if arm is None or arm.time_factor is None else f"{arm.time_factor:.2f}",
            "publish_failures": str(self._publish_failures),
            "last_publish_failure": self._last_publish_failure,
            **dict(sorted(self.loop.counters().items())),
        }
        status = conv.diagnostic_status("controller", self.config.robot_ip, level, message, values)
        self._publish(self._diag_pub, DiagnosticArray(header=conv.header(time.time(), ""), status=[status]))

    def close(self) -> None:
        self.loop.close()
        counters = self.loop.counters()
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(counters.items()) if k not in ("chunks_accepted", "chunks_rejected"))
        log.info("chunks accepted %d, rejected %d; %s", counters["chunks_accepted"], counters["chunks_rejected"],
                 decisions or "no limits hit")  # not the node's logger: its context may be gone already


def main(args: list[str] | None = None) -> int:
    return run_node(ControllerNode, args)
