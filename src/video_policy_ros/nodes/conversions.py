"""ROS message <-> core type conversion. The only place that knows both worlds."""

from __future__ import annotations

import math

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped, Transform, TwistStamped
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, JointState
from std_msgs.msg import Header
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint, MultiDOFJointTrajectory, MultiDOFJointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from video_policy_ros.types import (
    BASE_FRAME,
    FR3_ARM_JOINTS,
    FR3_FINGER_JOINT,
    TCP_FRAME,
    ActionChunk,
    ArmState,
    CameraFrame,
    DepthFrame,
    camera_optical_frame,
)


class MessageError(ValueError):
    """A received message cannot be converted; the text says what is wrong with it."""


# ---------------------------------------------------------------- time


def to_time(stamp: float) -> Time:
    sec, nanosec = _split_seconds(stamp)
    return Time(sec=sec, nanosec=nanosec)


def from_time(t: Time) -> float:
    return t.sec + t.nanosec * 1e-9


def to_duration(seconds: float) -> Duration:
    sec, nanosec = _split_seconds(seconds)
    return Duration(sec=sec, nanosec=nanosec)


def _split_seconds(seconds: float) -> tuple[int, int]:
    """Whole seconds and nanoseconds; a fraction that rounds to 1e9 ns carries into the seconds
    (5.9999999999 is 6 s 0 ns, not 5 s 0 ns)."""
    sec = math.floor(seconds)
    nanosec = round((seconds - sec) * 1e9)
    if nanosec >= 1_000_000_000:
        sec, nanosec = sec + 1, nanosec - 1_000_000_000
    return int(sec), int(nanosec)


def from_duration(d: Duration) -> float:
    return d.sec + d.nanosec * 1e-9


def header(stamp: float, frame_id: str) -> Header:
    return Header(stamp=to_time(stamp), frame_id=frame_id)


# ---------------------------------------------------------------- images


def camera_frame_id(camera: str) -> str:
    return camera_optical_frame(camera)


def image_to_msg(frame: CameraFrame) -> Image:
    h, w, _ = frame.image.shape
    msg = Image(header=header(frame.stamp, camera_frame_id(frame.camera)), height=h, width=w, encoding="rgb8")
    msg.step = 3 * w
    msg.data = frame.image.tobytes()  # bytes, not the array: assigning an array is ~50x slower
    return msg


def depth_to_msg(frame: DepthFrame) -> Image:
    """Aligned depth as realsense-ros publishes it: 16UC1 in the colour frame (millimetres for a D400)."""
    h, w = frame.depth.shape
    msg = Image(header=header(frame.stamp, camera_frame_id(frame.camera)), height=h, width=w, encoding="16UC1")
    msg.step = 2 * w
    msg.data = frame.depth.astype("<u2", copy=False).tobytes()
    return msg


def frame_from_msg(camera: str, msg: Image) -> CameraFrame:
    if msg.encoding not in ("rgb8", "bgr8"):
        raise MessageError(f"/cameras/{camera}/image_raw: encoding '{msg.encoding}' unsupported, publish rgb8")
    if msg.step != 3 * msg.width or len(msg.data) != msg.height * msg.step:
        raise MessageError(f"/cameras/{camera}/image_raw: {len(msg.data)} bytes do not match {msg.width}x{msg.height}x3")
    image = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
    if msg.encoding == "bgr8":
        image = image[..., ::-1]
    return CameraFrame(camera, from_time(msg.header.stamp), np.ascontiguousarray(image))


def compressed_image_msg(frame: CameraFrame, encoding: str, jpeg_quality: int) -> CompressedImage:
    """A frame → sensor_msgs/CompressedImage (JPEG/PNG, image_transport's ``format``)."""
    from video_policy_ros.data.image_codec import compressed_format, encode_rgb

    return CompressedImage(header=header(frame.stamp, camera_frame_id(frame.camera)),
                           format=compressed_format("rgb8", encoding), data=encode_rgb(frame.image, encoding, jpeg_quality))


def frame_from_compressed_msg(camera: str, msg: CompressedImage) -> CameraFrame:
    from video_policy_ros.data.image_codec import decode_to_rgb

    image = decode_to_rgb(bytes(msg.data))
    if image is None:
        raise MessageError(f"/cameras/{camera}/image_raw/compressed: {msg.format or 'the data'} does not decode")
    return CameraFrame(camera, from_time(msg.header.stamp), image)


def camera_info_msg(camera: str, stamp: float, width: int, height: int, k: np.ndarray, d: list[float] | None = None) -> CameraInfo:
    k = np.asarray(k, dtype=float)
    p = np.zeros((3, 4))
    p[:, :3] = k
    return CameraInfo(
        header=header(stamp, camera_frame_id(camera)),
        width=width,
        height=height,
        distortion_model="plumb_bob",
        d=list(d or [0.0] * 5),
        k=k.ravel().tolist(),
        r=np.eye(3).ravel().tolist(),
        p=p.ravel().tolist(),
    )


# ---------------------------------------------------------------- arm state


def joint_state_msg(state: ArmState) -> JointState:
    return JointState(
        header=header(state.stamp, ""),
        name=[*FR3_ARM_JOINTS, FR3_FINGER_JOINT],
        position=[*state.joint_positions.tolist(), state.gripper],
        velocity=[*state.joint_velocities.tolist(), 0.0],
        # Filled, not empty: rosbags rejects CDR whose last field is an empty array.
        effort=[0.0] * (len(FR3_ARM_JOINTS) + 1),
    )


def pose_msg(stamp: float, pose: np.ndarray, frame_id: str = BASE_FRAME) -> PoseStamped:
    msg = PoseStamped(header=header(stamp, frame_id))
    p, o = msg.pose.position, msg.pose.orientation
    p.x, p.y, p.z = (float(v) for v in pose[:3])
    o.x, o.y, o.z, o.w = (float(v) for v in pose[3:])
    return msg


def twist_msg(stamp: float, twist: np.ndarray, frame_id: str = BASE_FRAME) -> TwistStamped:
    """``twist`` is ``[vx, vy, vz, wx, wy, wz]``."""
    msg = TwistStamped(header=header(stamp, frame_id))
    lin, ang = msg.twist.linear, msg.twist.angular
    lin.x, lin.y, lin.z, ang.x, ang.y, ang.z = (float(v) for v in twist)
    return msg


def pose_from_msg(msg: PoseStamped) -> np.ndarray:
    p, o = msg.pose.position, msg.pose.orientation
    return np.array([p.x, p.y, p.z, o.x, o.y, o.z, o.w])


def gripper_from_joint_state(msg: JointState) -> float | None:
    return msg.position[msg.name.index(FR3_FINGER_JOINT)] if FR3_FINGER_JOINT in msg.name else None


# ---------------------------------------------------------------- chunks


def chunk_to_msgs(chunk: ActionChunk) -> tuple[MultiDOFJointTrajectory, JointTrajectory]:
    """The action chunk (TCP poses) and its gripper chunk, sharing the observation's stamp."""
    hdr = header(chunk.stamp, BASE_FRAME)
    poses = MultiDOFJointTrajectory(header=hdr, joint_names=[TCP_FRAME])
    gripper = JointTrajectory(header=hdr, joint_names=[FR3_FINGER_JOINT])
    for i, (pose, g) in enumerate(zip(chunk.poses, chunk.gripper)):
        t = to_duration((i + 1) * chunk.dt)
        tf = Transform()
        tf.translation.x, tf.translation.y, tf.translation.z = (float(v) for v in pose[:3])
        tf.rotation.x, tf.rotation.y, tf.rotation.z, tf.rotation.w = (float(v) for v in pose[3:])
        poses.points.append(MultiDOFJointTrajectoryPoint(transforms=[tf], time_from_start=t))
        gripper.points.append(JointTrajectoryPoint(positions=[float(g)], time_from_start=t))
    return poses, gripper


def chunk_from_msgs(poses: MultiDOFJointTrajectory, gripper: JointTrajectory | None, hold_gripper: float) -> ActionChunk:
    """Rebuild an ActionChunk. Without a matching gripper chunk the gripper holds ``hold_gripper``."""
    if poses.joint_names != [TCP_FRAME]:
        raise MessageError(f"/policy/action_chunk: joint_names must be ['{TCP_FRAME}'], got {list(poses.joint_names)}")
    if not poses.points:
        raise MessageError("/policy/action_chunk: no points")
    times = np.array([from_duration(p.time_from_start) for p in poses.points])
    if np.any(np.diff(times) <= 0) or times[0] <= 0:
        raise MessageError("/policy/action_chunk: time_from_start must be positive and strictly increasing")
    dts = np.diff(np.concatenate([[0.0], times]))
    if np.ptp(dts) > 1e-3:
        raise MessageError("/policy/action_chunk: points must be evenly spaced in time")
    arr = np.array([
        [t.translation.x, t.translation.y, t.translation.z, t.rotation.x, t.rotation.y, t.rotation.z, t.rotation.w]
        for t in (p.transforms[0] for p in poses.points)
    ])
    if gripper is not None and len(gripper.points) == len(poses.points):
        g = np.array([p.positions[0] for p in gripper.points])
    else:
        g = np.full(len(poses.points), hold_gripper)
    return ActionChunk(stamp=from_time(poses.header.stamp), dt=float(dts.mean()), poses=arr, gripper=g)


def path_markers(chunk: ActionChunk, ns: str = "predicted_path") -> MarkerArray:
    """The chunk's TCP path as a line strip plus a sphere at its final target."""
    hdr = header(chunk.stamp, BASE_FRAME)
    line = Marker(header=hdr, ns=ns, id=0, type=Marker.LINE_STRIP, action=Marker.ADD)
    line.scale.x = 0.005
    line.color.r, line.color.g, line.color.b, line.color.a = 0.1, 0.8, 1.0, 1.0
    line.pose.orientation.w = 1.0
    end = Marker(header=hdr, ns=ns, id=1, type=Marker.SPHERE, action=Marker.ADD)
    end.scale.x = end.scale.y = end.scale.z = 0.02
    end.color.r, end.color.g, end.color.b, end.color.a = 1.0, 0.5, 0.0, 1.0
    end.pose.orientation.w = 1.0
    for pose in chunk.poses:
        pt = pose_msg(0.0, pose).pose.position
        line.points.append(pt)
    end.pose.position = pose_msg(0.0, chunk.poses[-1]).pose.position
    return MarkerArray(markers=[line, end])


# ---------------------------------------------------------------- diagnostics

LEVELS = {"ok": DiagnosticStatus.OK, "warn": DiagnosticStatus.WARN, "error": DiagnosticStatus.ERROR}


def diagnostic_status(name: str, hardware_id: str, level: str, message: str, values: dict[str, object]) -> DiagnosticStatus:
    return DiagnosticStatus(
        level=LEVELS[level],
        name=name,
        hardware_id=hardware_id,
        message=message,
        values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
    )
