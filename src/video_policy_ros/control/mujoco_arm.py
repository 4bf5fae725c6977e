"""A direct MuJoCo backend: franky-sim's FR3 model stepped in-process, without the network protocol.

For fast batch evaluation: the same commander and watchdog drive it, the robot model and
its joint velocity controller are franky-sim's own (what the sim world serves over the
libfranka protocol), and time is simulated, so it runs as fast as the CPU allows.
It emulates what franky does around a joint velocity command: a command holds for
``command_timeout_s`` and then ramps to rest; ``halt`` ramps to rest at once.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from video_policy_ros.control.arm import ArmBackend
from video_policy_ros.geometry import matrix_to_quat
from video_policy_ros.types import ArmState

PHYSICS_STEP_S = 0.001  # franky-sim's 1 kHz step
GRIPPER_FORCE_N = 70.0


class MujocoArm(ArmBackend):
    def __init__(self, *, command_timeout_s: float, stop_deceleration: float, gripper_speed: float,
                 joint_damping_gains: tuple[float, ...] | None = None, scene: Callable[[object], None] | None = None):
        """``scene(simulator)`` may add bodies to ``simulator.worldbody`` before the model is built."""
        from franky_sim.mujoco_simulator import MujocoSimulator

        self._sim = MujocoSimulator()
        self._robot = self._sim.add_robot(**({"kv": joint_damping_gains} if joint_damping_gains else {}))
        if scene is not None:
            scene(self._sim)
        self._sim.init()
        self._sim.start()
        self._timeout = command_timeout_s
        self._stop_deceleration = stop_deceleration
        self._gripper_speed = gripper_speed
        self._target = np.zeros(7)
        self._target_age = np.inf
        self.time = 0.0
        self.advance(PHYSICS_STEP_S)  # franky-sim's robot state exists once a step has run

    @property
    def simulator(self):
        return self._sim

    def read_state(self) -> ArmState:
        state = self._robot.state
        o_t_ee = np.array(state.O_T_EE).reshape(4, 4, order="F")
        return ArmState(
            stamp=self.time,
            joint_positions=np.array(state.q),
            joint_velocities=np.array(state.dq),
            tcp_pose=np.concatenate([o_t_ee[:3, 3], matrix_to_quat(o_t_ee[:3, :3])]),
            gripper=self._robot.hand_width / 2,
        )

    def send_joint_velocity(self, joint_velocities: np.ndarray) -> None:
        self._target = np.asarray(joint_velocities, float).copy()
        self._target_age = 0.0

    def halt(self) -> None:
        self._target_age = np.inf

    def move_gripper(self, finger_position: float) -> None:
        self._robot.set_hand_goal(2 * finger_position, self._gripper_speed, GRIPPER_FORCE_N)

    def recover(self) -> None:
        """MuJoCo has no reflexes to clear."""

    def advance(self, seconds: float) -> None:
        """Step the physics for ``seconds`` of simulated time."""
        for _ in range(max(1, int(round(seconds / PHYSICS_STEP_S)))):
            if self._target_age > self._timeout:  # expired or halted: ramp to rest, as franky does
                step = self._stop_deceleration * PHYSICS_STEP_S
                self._target = np.sign(self._target) * np.maximum(np.abs(self._target) - step, 0.0)
            self._robot.joint_velocity_control(self._target)
            self._sim.step()
            self._target_age += PHYSICS_STEP_S
            self.time += PHYSICS_STEP_S

    def close(self) -> None:
        self._sim.cleanup()
