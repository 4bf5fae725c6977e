"""Hand-eye calibration with a ChArUco board: board detection (OpenCV ArUco), sample collection
with operator guidance, and the AX = XB solve for both mounts.

- eye-in-hand: the camera rides on the hand; the result is the camera's optical frame in the
  frame /ee_pose reports (``fr3_hand_tcp``); the board lies still on the table.
- eye-to-hand: the camera is static; the result is its optical frame in ``fr3_link0``; the
  board is held by the gripper.

Poses are ``[x, y, z, qx, qy, qz, qw]`` arrays, transforms 4x4 matrices ``T_parent_child``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from video_policy_ros.errors import StackError
from video_policy_ros.geometry import matrix_to_quat, quat_to_matrix, quat_to_rotvec
from video_policy_ros.sensors.calibration import CameraExtrinsics, Intrinsics
from video_policy_ros.types import BASE_FRAME, TCP_FRAME

Mount = Literal["eye_in_hand", "eye_to_hand"]
PARENT_FRAMES: dict[str, str] = {"eye_in_hand": TCP_FRAME, "eye_to_hand": BASE_FRAME}
MIN_CORNERS = 8  # fewer make the board pose ill-conditioned
MIN_SAMPLES = 3  # calibrateHandEye's minimum; accuracy wants ~10 or more
MIN_ROTATION_BETWEEN_SAMPLES_DEG = 5.0  # AX = XB is unobservable from translations alone
STILL_MM, STILL_DEG = 0.5, 0.1  # how still the arm must be while a sample is taken
POSE_LATENCY_S = 0.05  # /ee_pose comes at >= 100 Hz: one this close to the image's time is current


class CalibrationError(StackError):
    """Calibration cannot proceed or produced nothing usable; the text says what to do."""


def pose_to_matrix(pose: np.ndarray) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = quat_to_matrix(np.asarray(pose[3:], dtype=float)), pose[:3]
    return t


def matrix_to_pose(t: np.ndarray) -> np.ndarray:
    return np.concatenate([t[:3, 3], matrix_to_quat(t[:3, :3])])


def rotation_angle_deg(r: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


@dataclass(frozen=True)
class CharucoBoard:
    """A printed ChArUco board: ``squares`` (columns, rows), lengths in metres, an OpenCV ArUco dictionary."""

    squares: tuple[int, int] = (7, 5)
    square_m: float = 0.04
    marker_m: float = 0.03
    dictionary: str = "DICT_5X5_100"

    def __post_init__(self) -> None:
        import cv2

        if not hasattr(cv2.aruco, self.dictionary):
            raise CalibrationError(f"unknown ArUco dictionary '{self.dictionary}' (e.g. DICT_5X5_100, DICT_4X4_50)")
        if not 0 < self.marker_m < self.square_m or min(self.squares) < 3:
            raise CalibrationError(
                f"board {self.squares} squares of {self.square_m} m with {self.marker_m} m markers: needs at least "
                "3x3 squares and markers smaller than squares (measure the printed board)"
            )

    def cv_board(self):
        import cv2

        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        return cv2.aruco.CharucoBoard(self.squares, self.square_m, self.marker_m, dictionary)

    def image(self, pixels_per_square: int = 100, margin_squares: float = 0.5) -> np.ndarray:
        """The board as a grey image with a white margin (to print, or to texture a simulated board)."""
        margin = int(margin_squares * pixels_per_square)
        cols, rows = self.squares
        size = (cols * pixels_per_square + 2 * margin, rows * pixels_per_square + 2 * margin)
        return self.cv_board().generateImage(size, marginSize=margin)


@dataclass(frozen=True)
class BoardDetection:
    board_in_camera: np.ndarray  # T_camera_board (4x4)
    corners: int
    reprojection_px: float


def detect_board(image_rgb: np.ndarray, intrinsics: Intrinsics, board: CharucoBoard) -> BoardDetection | str:
    """The board's pose in the camera's optical frame, or why it was not found."""
    import cv2

    cv_board = board.cv_board()
    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY)
    corners, ids, _, _ = cv2.aruco.CharucoDetector(cv_board).detectBoard(gray)
    found = 0 if ids is None else len(ids)
    if found < MIN_CORNERS:
        return f"board not found ({found} of {MIN_CORNERS} needed corners): bring all of it into view, avoid glare"
    object_points, image_points = cv_board.matchImagePoints(corners, ids)
    k, d = intrinsics.k, np.asarray(intrinsics.d, dtype=float)
    ok, rvec, tvec = cv2.solvePnP(object_points, image_points, k, d, flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return "board seen but its pose could not be solved: tilt it less or move closer"
    projected, _ = cv2.projectPoints(object_points, rvec, tvec, k, d)
    error = float(np.sqrt(np.mean(np.sum((projected.reshape(-1, 2) - image_points.reshape(-1, 2)) ** 2, axis=-1))))
    t = np.eye(4)
    t[:3, :3], t[:3, 3] = cv2.Rodrigues(rvec)[0], tvec.ravel()
    return BoardDetection(t, found, error)


class PoseHistory:
    """The last few seconds of robot poses, to pair an image with the pose the arm held while it was taken."""

    def __init__(self, keep_s: float = 3.0):
        self.keep_s = keep_s
        self._poses: list[tuple[float, np.ndarray]] = []

    def add(self, stamp: float, pose: np.ndarray) -> None:
        self._poses.append((stamp, np.asarray(pose, dtype=float)))
        self._poses = [(t, p) for t, p in self._poses if t >= stamp - self.keep_s]

    def latest(self) -> np.ndarray | None:
        return self._poses[-1][1] if self._poses else None

    def still_pose_at(self, stamp: float, still_s: float) -> np.ndarray | str:
        """The pose at ``stamp`` if the arm held it for ``still_s`` before, else why not.

        Still means within STILL_MM / STILL_DEG: a moving arm blurs the image and makes the
        pose the image was taken at uncertain by the camera's latency.
        """
        window = [p for t, p in self._poses if stamp - still_s <= t <= stamp + POSE_LATENCY_S]
        covered = self._poses and self._poses[0][0] <= stamp - still_s and self._poses[-1][0] >= stamp - POSE_LATENCY_S
        if not covered or not window:
            return f"no /ee_pose for the {still_s} s before the image (is the controller running?)"
        reference = pose_to_matrix(window[-1])
        for pose in window:
            other = pose_to_matrix(pose)
            moved_mm = 1e3 * np.linalg.norm(other[:3, 3] - reference[:3, 3])
            turned_deg = rotation_angle_deg(other[:3, :3].T @ reference[:3, :3])
            if moved_mm > STILL_MM or turned_deg > STILL_DEG:
                return f"the arm is moving ({moved_mm:.1f} mm, {turned_deg:.2f} deg in {still_s} s): hold it still"
        return window[-1]


@dataclass
class HandEyeSession:
    """Collects (gripper pose, board detection) samples, telling the operator what to do next."""

    board: CharucoBoard
    intrinsics: Intrinsics
    mount: Mount
    samples: list[tuple[np.ndarray, BoardDetection]] = field(default_factory=list)

    def instructions(self) -> str:
        holds = "lay the board flat and still on the table" if self.mount == "eye_in_hand" else (
            "fix the board to the gripper (it must not slip)")
        return (
            f"{holds}. For each sample, move the arm to a new pose with the whole board in view, rotated at least "
            f"{MIN_ROTATION_BETWEEN_SAMPLES_DEG:.0f} deg (better 20-40 deg) from every previous pose about varied axes, "
            "and hold it still while the sample is taken."
        )

    def add(self, image_rgb: np.ndarray, gripper_pose: np.ndarray) -> str:
        """Adds a sample; returns what was taken. Raises CalibrationError saying why not and what to change."""
        detection = detect_board(image_rgb, self.intrinsics, self.board)
        if isinstance(detection, str):
            raise CalibrationError(detection)
        gripper = pose_to_matrix(gripper_pose)
        closest = min(
            (rotation_angle_deg(g[:3, :3].T @ gripper[:3, :3]) for g, _ in self.samples), default=np.inf
        )
        if closest < MIN_ROTATION_BETWEEN_SAMPLES_DEG:
            raise CalibrationError(
                f"this pose is rotated only {closest:.1f} deg from an earlier sample: rotate the wrist more "
                f"(>= {MIN_ROTATION_BETWEEN_SAMPLES_DEG:.0f} deg), about another axis than before"
            )
        self.samples.append((gripper, detection))
        return (
            f"sample {len(self.samples)}: {detection.corners} corners, reprojection {detection.reprojection_px:.2f} px, "
            f"board {np.linalg.norm(detection.board_in_camera[:3, 3]):.2f} m away"
        )

    def solve(self) -> CameraExtrinsics:
        return solve_hand_eye([g for g, _ in self.samples], [d.board_in_camera for _, d in self.samples], self.mount)


def solve_hand_eye(gripper_in_base: list[np.ndarray], board_in_camera: list[np.ndarray], mount: Mount) -> CameraExtrinsics:
    """The camera's pose (eye-in-hand: in the TCP frame; eye-to-hand: in the base frame) and the residual.

    Solves AX = XB by Park & Martin's least squares (OpenCV's CALIB_HAND_EYE_PARK) over every
    pair of samples. Not through ``cv2.calibrateHandEye``: the pinned OpenCV 5.0.0.93 wheels do
    not expose it to Python (opencv/opencv#29565, fixed upstream by #29584, unreleased).

    The residual is how much the pose of the thing that should be still (the board in the base
    frame for eye-in-hand, the board in the gripper for eye-to-hand) scatters across samples
    when computed through the solution: RMS translation (mm) and rotation (deg) about its mean.
    """
    if len(gripper_in_base) < MIN_SAMPLES or len(gripper_in_base) != len(board_in_camera):
        raise CalibrationError(f"hand-eye needs at least {MIN_SAMPLES} samples (10+ for accuracy), got {len(gripper_in_base)}")
    # Eye-to-hand is the same problem with the base seen from the gripper.
    moving = gripper_in_base if mount == "eye_in_hand" else [np.linalg.inv(g) for g in gripper_in_base]
    camera = _park_martin(moving, board_in_camera)
    still = [m @ camera @ b for m, b in zip(moving, board_in_camera)]
    residual_mm, residual_deg = _scatter(still)
    return CameraExtrinsics(matrix_to_pose(camera), PARENT_FRAMES[mount], "park_martin", residual_mm, residual_deg, len(still))


def _park_martin(moving: list[np.ndarray], board_in_camera: list[np.ndarray]) -> np.ndarray:
    """X with A X = X B for every pair (i, j): A = M_j^-1 M_i (hand motion), B = B_j B_i^-1 (camera motion)."""
    motions = [
        (np.linalg.inv(moving[j]) @ moving[i], board_in_camera[j] @ np.linalg.inv(board_in_camera[i]))
        for i in range(len(moving)) for j in range(i + 1, len(moving))
    ]
    # Rotation: the axis-angle vectors satisfy alpha = R_X beta; R_X = (M^T M)^-1/2 M^T with M = sum beta alpha^T.
    m = sum(np.outer(_log_rotation(b[:3, :3]), _log_rotation(a[:3, :3])) for a, b in motions)
    eigenvalues, eigenvectors = np.linalg.eigh(m.T @ m)
    if eigenvalues.min() < 1e-6 * eigenvalues.max():
        raise CalibrationError("the sample rotations share one axis: rotate the wrist about at least two different axes")
    rotation = eigenvectors @ np.diag(eigenvalues ** -0.5) @ eigenvectors.T @ m.T
    # Translation: (R_A - I) t_X = R_X t_B - t_A, stacked and solved in the least-squares sense.
    lhs = np.vstack([a[:3, :3] - np.eye(3) for a, _ in motions])
    rhs = np.concatenate([rotation @ b[:3, 3] - a[:3, 3] for a, b in motions])
    x = np.eye(4)
    x[:3, :3], x[:3, 3] = rotation, np.linalg.lstsq(lhs, rhs, rcond=None)[0]
    return x


def _log_rotation(r: np.ndarray) -> np.ndarray:
    return quat_to_rotvec(matrix_to_quat(r))


def _scatter(transforms: list[np.ndarray]) -> tuple[float, float]:
    positions = np.array([t[:3, 3] for t in transforms])
    translation_mm = 1e3 * float(np.sqrt(np.mean(np.sum((positions - positions.mean(axis=0)) ** 2, axis=1))))
    u, _, vt = np.linalg.svd(sum(t[:3, :3] for t in transforms))  # chordal mean rotation
    mean = u @ np.diag([1.0, 1.0, np.linalg.det(u @ vt)]) @ vt
    angles = [rotation_angle_deg(mean.T @ t[:3, :3]) for t in transforms]
    return translation_mm, float(np.sqrt(np.mean(np.square(angles))))
