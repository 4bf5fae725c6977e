"""A franky-sim FR3 that faults the way a real FR3 does, for the controller's recovery tests.

franky-sim never reports errors. This script serves the same simulated FR3 over the real
libfranka protocol and adds two of the robot's own error paths, so the controller sees
exactly what libfranka raises on a real arm:
- a *provoked* Cartesian reflex: a virtual wall at ``--wall-z`` (like a collision or a
  Desk safety plane); when the TCP crosses it downwards during a motion, the motion is aborted
  with ``kReflexAborted`` and ``cartesian_reflex`` in the robot state;
- an *injected* motion-generator error: on SIGUSR1 the running motion is aborted with
  ``joint_motion_generator_velocity_discontinuity``, as the FR3 reports a bad command stream.
The robot stays in reflex mode until libfranka's automatic error recovery command.

Its gripper can fail too (``--gripper-fault``), while the arm goes on:
- ``silent``: move commands are taken but never answered, and the fingers do not move
  (a hand that hangs);
- ``dies``: the first move command closes the gripper's connection, and the gripper
  accepts no new one (a hand that crashes or loses power mid-move).

Usage: python -m video_policy_ros.sim.faulty_fr3 <ip> --wall-z 0.25 [--gripper-fault silent|dies]
"""

from __future__ import annotations

import argparse
import signal
import threading

import franky_sim
import franky_sim.franka_robot_server as franka_robot_server
import franky_sim.simulation_server as simulation_server
from franky_sim.franka_gripper_server import FrankaGripperServer
from franky_sim.franka_robot_protocol import AutomaticErrorRecoveryCommand, MoveStatus, RobotCommand, RobotMode
from franky_sim.franka_robot_server import FrankaRobotServer
from franky_sim.franka_server import BaseCommand
from franky_sim.mujoco_simulator import MujocoSimulator

from video_policy_ros.sim.world import SIM_JOINT_DAMPING_GAINS

# Indices in libfranka's franka::Errors (the order of the robot state's error flags).
CARTESIAN_REFLEX = 7
JOINT_MOTION_GENERATOR_VELOCITY_DISCONTINUITY = 14
ERROR_FLAGS = 41


class RecoveryCommand(AutomaticErrorRecoveryCommand):
    def handle(self, server: "FaultyRobotServer"):
        server.errors = None
        super().handle(server)


class FaultyRobotServer(FrankaRobotServer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._FrankaServer__command_class_map[RobotCommand.kAutomaticErrorRecovery] = RecoveryCommand
        self.errors: tuple[bool, ...] | None = None
        self.wall_z: float = -1.0
        self._last_z: float | None = None
        self.inject = threading.Event()

    def abort(self, error: int) -> None:
        """What the FR3 does on a reflex: stop, report the reason, reject motions until recovery."""
        flags = [False] * ERROR_FLAGS
        flags[error] = True
        self.errors = tuple(flags)
        motion_id = self.current_motion_id
        self.stop_motion(send_preemption_signal=False)
        if motion_id:
            BaseCommand.send_response(self._tcp_socket, RobotCommand.kMove, motion_id, MoveStatus.kReflexAborted)
        self.reset_current_motion_id()
        print(f"fault: aborted motion {motion_id} with error flag {error}", flush=True)

    def check_faults(self) -> None:
        """Called after every physics step (the server's own thread)."""
        z, last_z = self.robot.state.O_T_EE[14], self._last_z  # column-major 4x4: z translation
        self._last_z = z
        if self.errors is not None or not self.current_motion_id:
            return
        if self.inject.is_set():
            self.inject.clear()
            self.abort(JOINT_MOTION_GENERATOR_VELOCITY_DISCONTINUITY)
        elif last_z is not None and last_z >= self.wall_z > z:  # the TCP hits the wall from above
            self.abort(CARTESIAN_REFLEX)

    @property
    def robot_state(self):
        state = super().robot_state
        if self.errors is None:
            return state
        return state.replace(robot_mode=RobotMode.kReflex, errors=self.errors, reflex_reason=self.errors)


class SilentGripperServer(FrankaGripperServer):
    def start_move(self, width, speed, command_id, tcp_socket) -> None:
        print(f"fault: gripper move {command_id} to {width:.3f} m taken, never answered", flush=True)


class DyingGripperServer(FrankaGripperServer):
    dead = False

    def start_move(self, width, speed, command_id, tcp_socket) -> None:
        super().start_move(width, speed, command_id, tcp_socket)
        print(f"fault: gripper dies during move {command_id}", flush=True)
        self.dead = True
        self.reset_state()  # closes the client's TCP and UDP sockets
        self.cleanup()  # and accepts no new connection

    def process_commands(self) -> None:
        if not self.dead:
            super().process_commands()

    def send_state(self) -> None:
        if not self.dead:
            super().send_state()


GRIPPER_FAULTS = {"silent": SilentGripperServer, "dies": DyingGripperServer}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ip")
    parser.add_argument("--wall-z", type=float, required=True)
    parser.add_argument("--gripper-fault", choices=sorted(GRIPPER_FAULTS))
    args = parser.parse_args()
    simulation_server.FrankaRobotServer = FaultyRobotServer
    if args.gripper_fault:
        franka_robot_server.FrankaGripperServer = GRIPPER_FAULTS[args.gripper_fault]
    sim = MujocoSimulator()
    sim.add_robot(kv=SIM_JOINT_DAMPING_GAINS)
    sim.init()
    server = franky_sim.SimulationServer(sim, hostname_candidates=[args.ip])
    server.init()
    robot_server: FaultyRobotServer = server.robot_servers[0]
    robot_server.wall_z = args.wall_z
    sim.register_post_step_callback(lambda _: robot_server.check_faults())
    signal.signal(signal.SIGUSR1, lambda *_: robot_server.inject.set())
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    server.run_async()
    print(f"faulty FR3 serving on {args.ip}, wall at z {args.wall_z}", flush=True)
    done.wait()
    server.cleanup()


if __name__ == "__main__":
    main()
