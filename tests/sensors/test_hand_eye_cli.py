"""`video-policy calibrate hand-eye --auto` end to end: a real rclpy graph publishes a MuJoCo-rendered
ChArUco board and /ee_pose; the command (its own process) writes calibration/<camera>.yaml."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.sensors.calibration import load_camera_info, load_extrinsics
from video_policy_ros.sensors.hand_eye import CharucoBoard, matrix_to_pose
from video_policy_ros.types import CameraFrame

from .test_hand_eye_sim import TOLERANCE_DEG, TOLERANCE_MM, errors, transform, views_of_the_board
from tests.repo import REPO

HOLD_S, IMAGE_PERIOD_S, POSE_PERIOD_S = 1.0, 0.1, 0.02


def calibrate_command(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "video_policy_ros.cli", "calibrate", "hand-eye", *args],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_auto_calibration_of_a_wrist_camera_writes_accurate_extrinsics(ros_graph, tmp_path):
    from video_policy_ros.sim.charuco_scene import CharucoScene

    board, scene = CharucoBoard(), CharucoScene(CharucoBoard(), 640, 480, fovy_deg=50.0)
    camera_in_tcp = transform([0.05, -0.03, 0.06], [0.05, -0.08, 0.12])
    # Spares for refused samples: on a loaded machine a hold can pass before the command has a still,
    # fresh image, so the operator keeps presenting new poses until the command has its 10.
    views = views_of_the_board(np.random.default_rng(1), 60)
    node = ros_graph.add(rclpy.create_node("arm_and_camera", context=ros_graph.context))
    image_pub = node.create_publisher(Image, "/cameras/wrist/image_raw", qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, "/cameras/wrist/camera_info", qos_profile_sensor_data)
    pose_pub = node.create_publisher(PoseStamped, "/ee_pose", 50)
    k = scene.intrinsics.k
    output = tmp_path / "wrist.yaml"
    command = calibrate_command("--camera", "wrist", "--mount", "eye_in_hand", "--samples", "10", "--auto",
                                "--still", "0.4", "--output", str(output), "--board", "7x5", "--square", str(board.square_m))
    try:
        for view in views:  # the operator moves the arm to each pose and holds it
            if command.poll() is not None:
                break
            image, tcp = scene.render(view), matrix_to_pose(view @ np.linalg.inv(camera_in_tcp))
            hold_until, next_image = time.monotonic() + HOLD_S, 0.0
            while time.monotonic() < hold_until and command.poll() is None:
                now = time.time()
                pose_pub.publish(conv.pose_msg(now, tcp))
                if time.monotonic() >= next_image:
                    image_pub.publish(conv.image_to_msg(CameraFrame("wrist", now, image)))
                    info_pub.publish(conv.camera_info_msg("wrist", now, 640, 480, k))
                    next_image = time.monotonic() + IMAGE_PERIOD_S
                ros_graph.executor.spin_once(timeout_sec=POSE_PERIOD_S)
        stdout, stderr = command.communicate(timeout=30)
    finally:
        command.kill()
        scene.close()
    assert command.returncode == 0, stdout + stderr
    assert "[10/10] sample 10" in stdout and "residual over 10 samples" in stdout and f"wrote {output}" in stdout
    extrinsics = load_extrinsics(output)
    mm, deg = errors(extrinsics.pose, camera_in_tcp)
    print(f"\nhand-eye via the CLI: error {mm:.2f} mm, {deg:.3f} deg; residual {extrinsics.residual_mm} mm")
    assert extrinsics.parent_frame == "fr3_hand_tcp" and mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    np.testing.assert_allclose(load_camera_info(output).k, k)  # a new file gets the intrinsics it was solved with


def test_without_camera_topics_the_command_says_what_to_start(tmp_path):
    command = calibrate_command("--camera", "nowhere", "--mount", "eye_to_hand", "--output", str(tmp_path / "x.yaml"))
    _, stderr = command.communicate(timeout=60)
    assert command.returncode == 2
    assert stderr.startswith("error: nothing on /cameras/nowhere/image_raw") and "start the camera node" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("args, message", [
    (["--board", "7y5"], "expected COLUMNSxROWS"),
    (["--samples", "2"], "at least 3"),
    (["--marker", "0.05"], "markers smaller than squares"),
])
def test_bad_arguments_are_one_line_errors(args, message):
    command = calibrate_command("--camera", "front", "--mount", "eye_to_hand", *args)
    _, stderr = command.communicate(timeout=60)
    assert command.returncode == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
