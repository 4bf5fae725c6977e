"""The inference node over real rclpy with the shipped checkpoint: its executor is never blocked
while a chunk is computed (measured), the predicted video carries the observation's stamp, and
/diagnostics reports the start-up budget and the controller's rejections."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseStamped
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from trajectory_msgs.msg import MultiDOFJointTrajectory

from video_policy_ros.config import InferenceConfig
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import configure_process
from video_policy_ros.nodes.inference_node import InferenceNode
from video_policy_ros.nodes.qos import TASK_QOS
from video_policy_ros.types import CameraFrame

pytestmark = pytest.mark.integration
CAMERAS = ("front", "wrist")
TCP = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])


def controller_status(accepted: int, rejected: int) -> DiagnosticArray:
    """What the controller publishes (its counters), so the test controls the rejected share."""
    return DiagnosticArray(status=[conv.diagnostic_status("controller", "127.0.0.1", "ok", "executing",
                                                          {"chunks_accepted": accepted, "chunks_rejected": rejected})])


def test_executor_stays_free_while_chunks_are_computed(shipped_checkpoint):
    configure_process()  # the GIL switch interval every node process runs with
    context = rclpy.Context()
    rclpy.init(context=context)
    config = InferenceConfig(policy="video_policy", model=shipped_checkpoint, cameras=CAMERAS, backend="torch",
                             num_steps=6, warmup_calls=1, predicted_video_rate_hz=0.5)
    node = InferenceNode(config, context=context)
    feeder = rclpy.create_node("feeder", context=context)
    # One thread serves every callback of the node: a callback that waited for the policy would stall the probe.
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    executor.add_node(feeder)
    probe_times: list[float] = []
    node.create_timer(0.02, lambda: probe_times.append(time.monotonic()))
    chunks, videos, statuses = [], [], []
    feeder.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", chunks.append, 10)
    feeder.create_subscription(Image, "/policy/predicted_video/wrist", videos.append, qos_profile_sensor_data)
    feeder.create_subscription(DiagnosticArray, "/diagnostics",
                               lambda m: statuses.extend(s for s in m.status if s.name == "inference"), 10)
    image_pubs = {c: feeder.create_publisher(Image, f"/cameras/{c}/image_raw", qos_profile_sensor_data) for c in CAMERAS}
    pose_pub = feeder.create_publisher(PoseStamped, "/ee_pose", 10)
    diag_pub = feeder.create_publisher(DiagnosticArray, "/diagnostics", 10)
    feeder.create_publisher(String, "/task", TASK_QOS).publish(String(data="touch the red cube"))
    sent_stamps: list[float] = []
    try:
        deadline = time.time() + 120
        while (len(chunks) < 3 or not videos) and time.time() < deadline:
            now = time.time()
            for c, pub in image_pubs.items():
                pub.publish(conv.image_to_msg(CameraFrame(c, now, np.full((48, 64, 3), 90, np.uint8))))
            sent_stamps.append(now)
            pose_pub.publish(conv.pose_msg(now, TCP))
            # The controller accepted every chunk but one, and had counted 10 + 10 before this node started.
            diag_pub.publish(controller_status(10 + len(chunks), 10 + min(len(chunks), 1)))
            end = now + 1 / 15
            while time.time() < end:
                executor.spin_once(timeout_sec=max(end - time.time(), 0.0))
        end = time.time() + 1.5  # one more diagnostics period
        while time.time() < end:
            executor.spin_once(timeout_sec=0.1)
    finally:
        node.close()
        executor.shutdown()
        node.destroy_node()
        feeder.destroy_node()
        rclpy.shutdown(context=context)
    assert len(chunks) >= 3 and videos, f"{len(chunks)} chunks and {len(videos)} videos within 120 s"

    values = {kv.key: kv.value for kv in statuses[-1].values}
    model_s = float(values["model_ms_p50"]) / 1e3
    gaps = np.diff(probe_times)
    print(f"chunk compute p50 {model_s:.2f} s; executor probe gaps p50 {np.median(gaps) * 1e3:.0f} ms, "
          f"max {gaps.max() * 1e3:.0f} ms over {len(probe_times)} probes")
    assert gaps.max() < 0.5 and gaps.max() < model_s / 2, "a callback waited for the policy"

    chunk_stamps = {conv.from_time(c.header.stamp) for c in chunks}
    video_stamp = conv.from_time(videos[0].header.stamp)
    assert video_stamp in chunk_stamps, "the predicted video is stamped with its chunk's observation"
    assert any(abs(video_stamp - s) < 1e-6 for s in sent_stamps), "...which is a camera frame's stamp"
    assert len(videos) < len(chunks), "video publishing is throttled"

    assert statuses[-1].level == DiagnosticStatus.WARN
    assert "controller rejected" in statuses[-1].message and int(values["downstream_rejected"]) >= 1
    assert "6 steps" in values["budget"]
