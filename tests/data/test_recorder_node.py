"""The recorder node over real rclpy: operator services, keyboard, and a kill -9 mid-episode."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from geometry_msgs.msg import PoseStamped, TwistStamped
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger

from tests.data.bags import tcp_pose
from video_policy_ros.preflight.processes import node_process, stop
from video_policy_ros.config import RecorderConfig
from video_policy_ros.data.bag_reader import read_bag
from video_policy_ros.data.converter import ConvertOptions, convert_bag
from video_policy_ros.data.events import EVENTS_TOPIC, make_event, parse_event
from video_policy_ros.data.recording import DISCARDED_FOLDER
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.qos import EVENTS_QOS
from video_policy_ros.nodes.recorder_node import RecorderNode, keyboard_loop
from video_policy_ros.types import ArmState, CameraFrame


class Robot:
    """Publishes what the controller and a camera would: numbered joint states, poses, images."""

    def __init__(self, node):
        self.node = node
        self.states = node.create_publisher(JointState, "/joint_states", 100)
        self.poses = node.create_publisher(PoseStamped, "/ee_pose", 100)
        self.images = node.create_publisher(Image, "/cameras/front/image_raw", qos_profile_sensor_data)
        self.commands = node.create_publisher(TwistStamped, "/controller/command", 100)
        self.events = node.create_publisher(String, EVENTS_TOPIC, EVENTS_QOS)
        self.sequence = 0

    def publish(self) -> None:
        now = time.time()
        pose = tcp_pose(0.01 * self.sequence)
        self.states.publish(conv.joint_state_msg(ArmState(now, np.full(7, float(self.sequence)), np.zeros(7), pose, 0.04)))
        self.poses.publish(conv.pose_msg(now, pose))
        command = TwistStamped(header=conv.header(now, "fr3_link0"))
        command.twist.linear.x = 0.1
        self.commands.publish(command)
        if self.sequence % 5 == 0:
            image = np.full((48, 64, 3), self.sequence % 250, np.uint8)
            self.images.publish(conv.image_to_msg(CameraFrame("front", now, image)))
        self.sequence += 1


def call(graph, client, request):
    assert client.wait_for_service(timeout_sec=5.0)
    future = client.call_async(request)
    assert graph.spin_until(future.done, timeout_s=5.0)
    return future.result()


def test_operator_services_and_keyboard_drive_episodes(ros_graph, tmp_path):
    config = RecorderConfig(output_dir=tmp_path, cameras=("front",), image_encoding="jpeg", stop_delay_s=0.0,
                            chunk_period_s=0.2)
    recorder = ros_graph.add(RecorderNode(config, context=ros_graph.context))
    operator = ros_graph.add(rclpy.create_node("operator", context=ros_graph.context))
    robot = Robot(operator)
    assert call(ros_graph, operator.create_client(Trigger, "/recorder/stop"), Trigger.Request()).success is False
    assert call(ros_graph, operator.create_client(Trigger, "/recorder/start"), Trigger.Request()).success
    for _ in range(60):
        robot.publish()
        ros_graph.spin_until(lambda: False, timeout_s=0.01)
    reply = call(ros_graph, operator.create_client(SetBool, "/recorder/mark_success"), SetBool.Request(data=True))
    assert reply.success
    assert ros_graph.spin_until(lambda: recorder.core.finished, timeout_s=5.0)
    bag = read_bag(recorder.core.finished[0][0])
    assert bag.episode["success"] is True and bag.episode["reason"] == "service"
    assert [parse_event(m.data)["event"] for m in bag.messages(EVENTS_TOPIC)] == ["start", "success", "stop"]
    assert len(bag.messages("/cameras/front/image_raw/compressed")) >= 5
    assert len(bag.messages("/joint_states")) >= 30
    assert bag.messages("/controller/command")[0].twist.linear.x == 0.1

    keyboard_loop(recorder, io.StringIO("s\nd\nq\n"))  # start, discard, quit
    assert len(list((tmp_path / DISCARDED_FOLDER).iterdir())) == 1 and recorder.exit_code == 0


def test_kill_9_mid_episode_leaves_a_bag_readable_to_its_last_chunk(ros_graph, tmp_path):
    config_file = tmp_path / "recorder.yaml"
    config_file.write_text(f"output_dir: {tmp_path / 'bags'}\ncameras: [front]\nchunk_period_s: 0.2\n")
    process = node_process("recorder", {"config_file": config_file}, tmp_path / "recorder.log")
    try:
        node = ros_graph.add(rclpy.create_node("robot", context=ros_graph.context))
        robot = Robot(node)
        assert ros_graph.spin_until(lambda: robot.states.get_subscription_count() > 0, timeout_s=30.0), \
            (tmp_path / "recorder.log").read_text()
        robot.events.publish(String(data=json.dumps(make_event("start", "test", task="touch the red cube"))))
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:  # 50 Hz for 3 s, then the recorder dies mid-episode
            robot.publish()
            ros_graph.spin_until(lambda: False, timeout_s=0.02)
        process.kill()  # SIGKILL through the Popen: its pid is ours until it is reaped
        process.wait(timeout=10)
    finally:
        stop(process)
    (bag_path,) = (tmp_path / "bags").iterdir()
    assert not (bag_path / "metadata.yaml").exists()  # never closed
    bag = read_bag(bag_path)
    assert bag.truncated and "last complete chunk" in bag.warnings[0]
    assert parse_event(bag.messages(EVENTS_TOPIC)[0].data)["event"] == "start"
    sequence = np.array([m.position[0] for m in bag.messages("/joint_states")])
    assert len(sequence) >= 50, "at least a second of the 3 s recorded must have reached the disk"
    assert np.all(np.diff(sequence) == 1), "what is read is a contiguous stretch, no holes"
    episode = convert_bag(bag, ConvertOptions(fps=10.0)).episode
    assert episode.has_actions and len(episode) >= 5 and episode.instruction == "touch the red cube"


def test_an_unwritable_output_folder_stops_the_recorder_with_the_reason(ros_graph, tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    recorder = ros_graph.add(RecorderNode(RecorderConfig(output_dir=not_a_folder), context=ros_graph.context))
    accepted, message = recorder.operator("start")
    assert not accepted and "recording stopped" in message and recorder.exit_code == 2
