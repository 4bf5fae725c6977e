"""ControllerConfig → the control core (watchdog, commander, loop) on a chosen arm backend.

Also the start-up check that the configured workspace is reachable: the box's corners,
edge midpoints and face centres are solved with the FR3's kinematics, with the hand
straight down and tilted by ``max_tilt_rad`` about x and y, away from singular poses.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from video_policy_ros.config import ControllerConfig
from video_policy_ros.control.arm import ArmBackend, FrankyArm
from video_policy_ros.control.commander import ArmCommander
from video_policy_ros.control.kinematics import HOME_JOINTS, FR3Kinematics, box_probe_points, tilted
from video_policy_ros.control.loop import ControlLoop
from video_policy_ros.control.watchdog import DivergenceGuard, JointCommand, RecoveryPolicy, SafetyLimits, Watchdog
from video_policy_ros.errors import StackError
from video_policy_ros.types import ArmState

FR3_GRIPPER_RANGE = (0.0, 0.04)  # fr3_finger_joint1, m
MIN_SINGULAR_VALUE = 0.08  # of the TCP position Jacobian: below this the arm is close to full extension


class WorkspaceUnreachable(StackError):
    """The configured workspace box contains poses the FR3 cannot reach."""


def safety_limits(config: ControllerConfig) -> SafetyLimits:
    return SafetyLimits(
        max_linear_speed=config.max_linear_speed,
        max_angular_speed=config.max_angular_speed,
        max_linear_acceleration=config.max_linear_acceleration,
        max_angular_acceleration=config.max_angular_acceleration,
        joint_velocity=np.array(config.max_joint_velocity),
        joint_acceleration=config.max_joint_acceleration,
        joint_jerk=config.max_joint_jerk,
        joint_limit_margin=config.joint_limit_margin_rad,
        workspace_min=np.array(config.workspace.min),
        workspace_max=np.array(config.workspace.max),
        workspace_tolerance=config.workspace_tolerance_m,
        max_tilt=config.max_tilt_rad,
        table_z=config.table_z,
        table_clearance=config.table_clearance_m,
        gripper_range=FR3_GRIPPER_RANGE,
        max_chunk_age=config.max_chunk_age_s,
        max_future_stamp=config.max_future_stamp_s,
        max_start_jump=config.max_start_jump_m,
        max_chunk_silence=config.max_chunk_silence_s,
    )


def check_workspace_reachable(kinematics: FR3Kinematics, config: ControllerConfig) -> None:
    """Raise WorkspaceUnreachable naming the first probe pose the FR3 cannot reach."""
    down = kinematics.tcp_pose(HOME_JOINTS)[3:]
    tilt = config.max_tilt_rad
    orientations = [down] + [tilted(down, axis, sign * tilt) for axis in np.eye(3)[:2] for sign in (-1, 1)]
    previous = HOME_JOINTS
    for point in box_probe_points(np.array(config.workspace.min), np.array(config.workspace.max)):
        for quat in orientations:
            pose = np.concatenate([point, quat])
            result = kinematics.solve_ik(pose)
            if not result.converged:  # IK is local: retry from the neighbouring probe's solution
                result = kinematics.solve_ik(pose, start=previous)
            if not result.converged or result.min_singular_value < MIN_SINGULAR_VALUE:
                why = "out of reach" if not result.converged else "too close to full extension"
                raise WorkspaceUnreachable(
                    f"workspace: the TCP at {point.round(3).tolist()} with the hand tilted up to {tilt} rad is {why} "
                    "for the FR3; shrink workspace.min/max (or max_tilt_rad) in the controller YAML"
                )
            previous = result.joints


def build_commander(config: ControllerConfig, kinematics: FR3Kinematics | None = None) -> ArmCommander:
    kinematics = kinematics or FR3Kinematics()
    check_workspace_reachable(kinematics, config)
    recovery = RecoveryPolicy(frozenset(config.auto_recover_errors), config.max_recovery_attempts)
    d = config.divergence
    guard = DivergenceGuard(d.threshold, d.predictions, d.action, d.slow_factor)
    return ArmCommander(Watchdog(safety_limits(config), kinematics, recovery, guard=guard), config.position_gain)


def franky_connector(config: ControllerConfig) -> Callable[[], ArmBackend]:
    return lambda: FrankyArm(
        config.robot_ip,
        command_timeout_s=config.command_timeout_s,
        relative_dynamics_factor=config.relative_dynamics_factor,
        gripper_speed=config.gripper_speed,
        realtime=config.realtime,
    )


def build_control_loop(config: ControllerConfig, on_state: Callable[[ArmState], None],
                       on_command: Callable[[JointCommand], None] | None = None,
                       connect: Callable[[], ArmBackend] | None = None, clock=None) -> ControlLoop:
    """The franky backend unless ``connect`` supplies another (e.g. a MujocoArm)."""
    extra = {"clock": clock} if clock is not None else {}
    return ControlLoop(
        connect or franky_connector(config), build_commander(config), config.loop_rate_hz, on_state, on_command,
        connect_timeout_s=config.connect_timeout_s, robot_name=f"the robot at {config.robot_ip}", **extra,
    )
