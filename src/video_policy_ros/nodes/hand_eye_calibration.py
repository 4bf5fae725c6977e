"""``video-policy calibrate hand-eye``: where is the camera? A ChArUco board, robot poses from /ee_pose.

    video-policy calibrate hand-eye --camera wrist --mount eye_in_hand
    video-policy calibrate hand-eye --camera front --mount eye_to_hand --auto

The camera node (or the sim world) must publish /cameras/<camera>/image_raw and camera_info,
and the controller /ee_pose. For every sample the operator moves the arm (e.g. in Desk's
guiding mode) and holds it still; with ``--auto`` a sample is taken whenever the arm has been
still for a moment, otherwise on Enter. The result goes into the camera's calibration file
(``calibration/<camera>.yaml``, section ``extrinsics``), which the camera node publishes on
/cameras/<camera>/pose.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np

from video_policy_ros.config import REPO_CONFIG_DIR
from video_policy_ros.errors import StackError
from video_policy_ros.sensors.calibration import Intrinsics, save_extrinsics
from video_policy_ros.sensors.hand_eye import CalibrationError, CharucoBoard, HandEyeSession, PoseHistory
from video_policy_ros.types import CameraFrame

CALIBRATION_DIR = REPO_CONFIG_DIR.parent / "calibration"
WAIT_FOR_TOPICS_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="calibration", required=True, metavar="KIND")
    p = sub.add_parser("hand-eye", help="camera pose from a ChArUco board seen in several robot poses")
    p.add_argument("--camera", required=True, help="camera name: uses /cameras/<camera>/image_raw and camera_info")
    p.add_argument("--mount", required=True, choices=["eye_in_hand", "eye_to_hand"],
                   help="eye_in_hand: camera on the hand, board still; eye_to_hand: static camera, board in the gripper")
    p.add_argument("--samples", type=int, default=12, help="poses to collect (>= 3; 10-20 for accuracy)")
    p.add_argument("--board", default="7x5", help="squares, columns x rows, of the printed ChArUco board")
    p.add_argument("--square", type=float, default=0.04, help="measured square side, metres")
    p.add_argument("--marker", type=float, default=0.03, help="measured marker side, metres")
    p.add_argument("--dictionary", default="DICT_5X5_100", help="the board's ArUco dictionary")
    p.add_argument("--output", type=Path, default=None, help="calibration file (default: calibration/<camera>.yaml)")
    p.add_argument("--auto", action="store_true", help="take a sample whenever the arm has been still for --still seconds")
    p.add_argument("--still", type=float, default=0.5, help="seconds the arm must hold a pose for a sample")


def parse_board(args) -> CharucoBoard:
    try:
        columns, rows = (int(v) for v in args.board.lower().split("x"))
    except ValueError:
        raise CalibrationError(f"--board {args.board!r}: expected COLUMNSxROWS, e.g. 7x5") from None
    return CharucoBoard((columns, rows), args.square, args.marker, args.dictionary)


class CalibrationInputs:
    """Subscribes to the camera and /ee_pose; the latest image, its intrinsics and the pose history."""

    def __init__(self, context, camera: str):
        import rclpy
        from geometry_msgs.msg import PoseStamped
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image

        from video_policy_ros.nodes import conversions as conv

        self._conv = conv
        self.camera = camera
        self.node = rclpy.create_node("hand_eye_calibration", context=context)
        self.lock = threading.Lock()
        self.image: CameraFrame | None = None
        self.intrinsics: Intrinsics | None = None
        self.poses = PoseHistory()
        self.node.create_subscription(Image, f"/cameras/{camera}/image_raw", self._on_image, qos_profile_sensor_data)
        self.node.create_subscription(CameraInfo, f"/cameras/{camera}/camera_info", self._on_info, qos_profile_sensor_data)
        self.node.create_subscription(PoseStamped, "/ee_pose", self._on_pose, 50)

    def _on_image(self, msg) -> None:
        frame = self._conv.frame_from_msg(self.camera, msg)
        with self.lock:
            self.image = frame

    def _on_info(self, msg) -> None:
        intrinsics = Intrinsics(msg.width, msg.height, np.reshape(msg.k, (3, 3)), list(msg.d), msg.distortion_model)
        with self.lock:
            self.intrinsics = intrinsics

    def _on_pose(self, msg) -> None:
        with self.lock:
            self.poses.add(self._conv.from_time(msg.header.stamp), self._conv.pose_from_msg(msg))

    def missing(self) -> str:
        with self.lock:
            return ", ".join(
                name for name, value in ((f"/cameras/{self.camera}/image_raw", self.image),
                                         (f"/cameras/{self.camera}/camera_info", self.intrinsics),
                                         ("/ee_pose", self.poses.latest())) if value is None
            )

    def sample(self, still_s: float) -> tuple[CameraFrame, np.ndarray | str]:
        with self.lock:
            return self.image, self.poses.still_pose_at(self.image.stamp, still_s)


def run(args) -> int:
    """Exit 0 with the file written; 2 with one line saying what to fix; 130 when the operator cancels."""
    try:
        return calibrate(args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, EOFError):
        print("error: calibration cancelled; nothing was written", file=sys.stderr)
        return 130


def calibrate(args) -> int:
    import rclpy
    from video_policy_ros.nodes.base import private_context
    from rclpy.executors import SingleThreadedExecutor

    board = parse_board(args)
    if args.samples < 3:
        raise CalibrationError(f"--samples {args.samples}: hand-eye needs at least 3 (10-20 for accuracy)")
    output = args.output or CALIBRATION_DIR / f"{args.camera}.yaml"
    context = private_context()
    inputs = CalibrationInputs(context, args.camera)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(inputs.node)
    stop = threading.Event()

    def spin() -> None:  # stopped and joined before shutdown: shutting down under a spinning thread aborts
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + WAIT_FOR_TOPICS_S
        while inputs.missing() and time.monotonic() < deadline:
            time.sleep(0.1)
        if inputs.missing():
            raise CalibrationError(f"nothing on {inputs.missing()} after {WAIT_FOR_TOPICS_S:.0f} s: start the camera node "
                                   "and the controller (same ROS_DOMAIN_ID)")
        session = HandEyeSession(board, inputs.intrinsics, args.mount)
        print(f"hand-eye ({args.mount}) for camera '{args.camera}': {session.instructions()}", flush=True)
        collect(session, inputs, args)
        result = session.solve()
    finally:
        stop.set()
        spinner.join()
        executor.shutdown()
        inputs.node.destroy_node()
        rclpy.shutdown(context=context)
    x, y, z = result.pose[:3]
    print(f"camera '{args.camera}' in {result.parent_frame}: translation [{x:.4f}, {y:.4f}, {z:.4f}] m, "
          f"rotation (x, y, z, w) {np.round(result.pose[3:], 5).tolist()}")
    print(f"residual over {result.samples} samples: {result.residual_mm:.2f} mm, {result.residual_deg:.3f} deg "
          "(the board's scatter: above ~2 mm / 0.3 deg, check the board's measurements and /ee_pose's TCP)")
    save_extrinsics(output, result, args.camera, session.intrinsics)
    print(f"wrote {output}")
    return 0


def collect(session: HandEyeSession, inputs: CalibrationInputs, args) -> None:
    last_feedback = ""
    while len(session.samples) < args.samples:
        if args.auto:
            time.sleep(0.1)
        else:
            answer = input(f"[{len(session.samples) + 1}/{args.samples}] hold the arm still, Enter = take sample, "
                           "s = solve now, q = quit: ").strip().lower()
            if answer == "q":
                raise KeyboardInterrupt
            if answer == "s":
                return
        image, pose = inputs.sample(args.still)
        try:
            if isinstance(pose, str):
                raise CalibrationError(pose)
            feedback = f"[{len(session.samples) + 1}/{args.samples}] {session.add(image.image, pose)}"
        except CalibrationError as exc:
            feedback = f"not taken: {exc}"
        if feedback != last_feedback or not args.auto:  # --auto repeats itself only when something changed
            print(feedback, flush=True)
            last_feedback = feedback

