"""Reconnecting to a robot that is still up, through the real franky against franky-sim in this process.

A Franka controller (and franky-sim) serves one client at a time. When the controller's UDP stream times
out (a loaded machine starved the robot's server), the robot is still up and still holds the old TCP
connection: a reconnection succeeds only once the old connection is really closed. A closed arm that kept
its franky Robot (the controller's reconnect still held the old arm, and an exception's traceback can too)
left every new connection refused until connect_timeout_s ran out, and the controller gave up (seen in a
fresh-clone CI run beside stress-ng).
"""

from video_policy_ros.control.arm import FrankyArm
from video_policy_ros.config import SimWorldConfig
from video_policy_ros.preflight.processes import robot_ip_for_this_process
from video_policy_ros.sim.world import SimWorld


def connect(ip: str) -> FrankyArm:
    return FrankyArm(ip, command_timeout_s=0.1, relative_dynamics_factor=0.5, gripper_speed=0.1)


def test_a_closed_arm_frees_the_robot_for_the_next_connection_even_while_still_referenced():
    ip = robot_ip_for_this_process()
    with SimWorld(SimWorldConfig(robot_ip=ip, cameras=[])) as world:
        first = connect(ip)
        before = first.read_state()
        first.close()  # `first` stays referenced, as the old arm in a reconnection
        second = connect(ip)
        try:
            state = second.read_state()
            assert state.joint_positions.shape == (7,) and state.stamp >= before.stamp
            second.move_gripper(0.01)
            assert second.gripper_fault is None
        finally:
            second.close()
