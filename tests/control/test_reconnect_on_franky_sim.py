"""Reconnecting to a robot that is still up, through the real franky against franky-sim in this process.

A Franka controller (and franky-sim) serves one client at a time, so a reconnection succeeds only once the
old connection is really closed. A closed arm kept its franky Robot and Gripper until the last reference to
it went, and the controller's reconnection still held the old arm (an exception's traceback can too): the new
connection then waited on a robot busy with the old one (this test hung before the fix). The likely cause of
a red fresh-clone run beside stress-ng, where the controller's reconnection after a UDP timeout failed for its
whole connect_timeout_s while the sim world was up.
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
