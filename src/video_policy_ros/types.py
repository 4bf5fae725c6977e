"""Typed values that cross package boundaries (no ROS, no torch).

Conventions used everywhere in the stack:
- poses are ``[x, y, z, qx, qy, qz, qw]`` (metres, unit quaternion, scalar last)
  expressed in ``fr3_link0``;
- stamps are seconds (float) of the clock that *measured* the data;
- the gripper value is the ``fr3_finger_joint1`` position in metres
  (half the opening width: 0.0 closed, 0.04 fully open).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

FR3_ARM_JOINTS = tuple(f"fr3_joint{i}" for i in range(1, 8))
FR3_FINGER_JOINT = "fr3_finger_joint1"
TCP_FRAME = "fr3_hand_tcp"
BASE_FRAME = "fr3_link0"
FINGERS_OPEN = 0.04  # fr3_finger_joint1 of the Franka hand fully open (8 cm between the fingers)
FINGERS_CLOSED = 0.0  # closed; closing on an object stops at its half width and squeezes it


def camera_optical_frame(camera: str) -> str:
    """A camera's image frame id, named as realsense-ros names it (x right, y down, z forward)."""
    return f"{camera}_color_optical_frame"


def _check_pose_array(name: str, poses: np.ndarray, ndim: int) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != ndim or poses.shape[-1] != 7:
        raise ValueError(f"{name} must have shape {'(N, 7)' if ndim == 2 else '(7,)'}, got {poses.shape}")
    return poses


@dataclass(frozen=True)
class CameraFrame:
    """One RGB image. ``image`` is ``(H, W, 3)`` uint8, ``stamp`` the exposure time."""

    camera: str
    stamp: float
    image: np.ndarray

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"camera '{self.camera}': expected an (H, W, 3) uint8 image, "
                f"got shape {self.image.shape} dtype {self.image.dtype}"
            )


@dataclass(frozen=True)
class DepthFrame:
    """A depth image aligned to its camera's colour frame: ``depth`` is ``(H, W)`` uint16 in
    units of ``depth_scale_m`` metres (0 = no measurement); ``stamp`` is its colour frame's."""

    camera: str
    stamp: float
    depth: np.ndarray
    depth_scale_m: float

    def __post_init__(self) -> None:
        if self.depth.ndim != 2 or self.depth.dtype != np.uint16:
            raise ValueError(f"camera '{self.camera}': expected an (H, W) uint16 depth image, got {self.depth.shape} {self.depth.dtype}")


@dataclass(frozen=True)
class ArmState:
    """Measured robot state at ``stamp``."""

    stamp: float
    joint_positions: np.ndarray  # (7,) rad
    joint_velocities: np.ndarray  # (7,) rad/s
    tcp_pose: np.ndarray  # (7,) pose in fr3_link0
    gripper: float  # fr3_finger_joint1 position, metres


@dataclass(frozen=True)
class Observation:
    """Everything a policy may look at: the latest frame per camera, proprioception, task.

    ``frames`` keeps the policy's camera order. ``stamp`` is the oldest measurement
    in the observation, so a chunk computed from it is never younger than its inputs.
    """

    frames: dict[str, CameraFrame]
    tcp_pose: np.ndarray  # (7,)
    gripper: float
    instruction: str
    stamp: float = field(default=-1.0)

    def __post_init__(self) -> None:
        _check_pose_array("tcp_pose", self.tcp_pose, 1)
        if self.stamp < 0:
            stamps = [f.stamp for f in self.frames.values()]
            object.__setattr__(self, "stamp", min(stamps) if stamps else 0.0)


@dataclass(frozen=True)
class ActionChunk:
    """Timed absolute TCP targets: point ``i`` is due at ``stamp + (i + 1) * dt``.

    ``poses`` is ``(N, 7)`` in fr3_link0, ``gripper`` is ``(N,)`` finger-joint positions.
    ``stamp`` is the measurement time of the observation the chunk was computed from.
    """

    stamp: float
    dt: float
    poses: np.ndarray
    gripper: np.ndarray

    def __post_init__(self) -> None:
        poses = _check_pose_array("poses", self.poses, 2)
        gripper = np.asarray(self.gripper, dtype=np.float64)
        if gripper.shape != (poses.shape[0],):
            raise ValueError(f"gripper must have shape ({poses.shape[0]},), got {gripper.shape}")
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        object.__setattr__(self, "poses", poses)
        object.__setattr__(self, "gripper", gripper)

    def __len__(self) -> int:
        return self.poses.shape[0]

    @property
    def times(self) -> np.ndarray:
        """Absolute due time of every point."""
        return self.stamp + self.dt * np.arange(1, len(self) + 1)


@dataclass(frozen=True)
class PolicyOutput:
    """What a policy returns: the chunk, and optionally its predicted future video.

    ``predicted_frames`` maps camera name to ``(T, H, W, 3)`` uint8 frames. A policy whose
    video is costly to decode gives ``decode_video`` instead, which returns the same mapping
    when (and only if) someone wants to look at it, off the chunk's critical path.
    """

    chunk: ActionChunk
    predicted_frames: dict[str, np.ndarray] | None = None
    decode_video: Callable[[], dict[str, np.ndarray]] | None = None
