"""Hand-eye calibration verified in simulation: a ChArUco board rendered by MuJoCo from known camera
poses; the recovered extrinsics must be within 5 mm and 0.5 deg of the truth."""

from __future__ import annotations

import numpy as np
import pytest

from video_policy_ros.geometry import rotvec_to_quat
from video_policy_ros.sensors.hand_eye import (
    CalibrationError,
    CharucoBoard,
    HandEyeSession,
    matrix_to_pose,
    pose_to_matrix,
    rotation_angle_deg,
    solve_hand_eye,
)

SAMPLES = 15
TOLERANCE_MM, TOLERANCE_DEG = 5.0, 0.5


def look_at(position: np.ndarray, target: np.ndarray, roll_rad: float) -> np.ndarray:
    """Optical-frame pose (z forward, y down) at ``position`` looking at ``target``, rolled about its z."""
    z = (target - position) / np.linalg.norm(target - position)
    x = np.cross(z, [0.0, 0.0, 1.0]) if abs(z[2]) < 0.99 else np.array([1.0, 0.0, 0.0])
    x -= x.dot(z) * z
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    t = np.eye(4)
    t[:3, :3] = np.column_stack([x, y, z]) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    t[:3, 3] = position
    return t


def views_of_the_board(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """Camera poses in the board plane's frame, 0.35-0.55 m away, tilted up to 35 deg, rolled +-60 deg."""
    views = []
    for _ in range(count):
        polar, azimuth, distance = np.radians(rng.uniform(5, 35)), rng.uniform(0, 2 * np.pi), rng.uniform(0.35, 0.55)
        direction = np.array([np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)])
        target = np.array([*rng.uniform(-0.03, 0.03, 2), 0.0])
        views.append(look_at(target + distance * direction, target, rng.uniform(-1.0, 1.0)))
    return views


def transform(translation, rotvec) -> np.ndarray:
    return pose_to_matrix(np.concatenate([translation, rotvec_to_quat(np.asarray(rotvec, dtype=float))]))


def errors(recovered_pose: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    recovered = pose_to_matrix(recovered_pose)
    return 1e3 * np.linalg.norm(recovered[:3, 3] - truth[:3, 3]), rotation_angle_deg(recovered[:3, :3].T @ truth[:3, :3])


@pytest.fixture(scope="module")
def scene():
    from video_policy_ros.sim.charuco_scene import CharucoScene

    board = CharucoBoard()
    scene = CharucoScene(board, 640, 480, fovy_deg=50.0)
    yield board, scene
    scene.close()


def collect(session: HandEyeSession, scene, views, gripper_poses) -> int:
    rejected = 0
    for view, gripper in zip(views, gripper_poses):
        try:
            session.add(scene.render(view), matrix_to_pose(gripper))
        except CalibrationError:
            rejected += 1  # too close to an earlier rotation: the operator would be told to rotate more
    return rejected


def calibrate_and_report(scene, mount: str, views, grippers, truth: np.ndarray):
    """Run the session on the rendered views, print the accuracy figure, return (result, error mm, error deg)."""
    board, sim = scene
    session = HandEyeSession(board, sim.intrinsics, mount)
    rejected = collect(session, sim, views, grippers)
    result = session.solve()
    mm, deg = errors(result.pose, truth)
    print(f"\nhand-eye sim {mount}: error {mm:.2f} mm, {deg:.3f} deg; residual {result.residual_mm:.2f} mm, "
          f"{result.residual_deg:.3f} deg over {result.samples} poses ({rejected} rejected)")
    return result, mm, deg


def test_eye_in_hand_recovers_the_camera_on_the_hand(scene):
    camera_in_tcp = transform([0.05, -0.03, 0.06], [0.05, -0.08, 0.12])
    views = views_of_the_board(np.random.default_rng(1), SAMPLES)  # the board lies at the origin of the base frame
    grippers = [view @ np.linalg.inv(camera_in_tcp) for view in views]
    result, mm, deg = calibrate_and_report(scene, "eye_in_hand", views, grippers, camera_in_tcp)
    assert result.parent_frame == "fr3_hand_tcp" and result.samples >= 10
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG
    assert result.residual_mm < TOLERANCE_MM and result.residual_deg < TOLERANCE_DEG


def test_eye_to_hand_recovers_the_static_camera(scene):
    camera_in_base = look_at(np.array([1.1, 0.3, 0.7]), np.array([0.5, 0.0, 0.1]), 0.1)
    board_in_tcp = transform([0.0, 0.02, 0.04], [0.0, 0.1, 0.0])
    views = views_of_the_board(np.random.default_rng(2), SAMPLES)  # camera in the board's frame
    grippers = [camera_in_base @ np.linalg.inv(view) @ np.linalg.inv(board_in_tcp) for view in views]
    result, mm, deg = calibrate_and_report(scene, "eye_to_hand", views, grippers, camera_in_base)
    assert result.parent_frame == "fr3_link0" and result.samples >= 10
    assert mm < TOLERANCE_MM and deg < TOLERANCE_DEG


def test_a_wrong_robot_pose_shows_in_the_residual(scene):
    """The residual is the operator's check: one sample with a 2 cm error in /ee_pose must raise it."""
    board, sim = scene
    rng = np.random.default_rng(1)
    camera_in_tcp = transform([0.05, -0.03, 0.06], [0.05, -0.08, 0.12])
    views = views_of_the_board(rng, 12)
    grippers = [view @ np.linalg.inv(camera_in_tcp) for view in views]
    session = HandEyeSession(board, sim.intrinsics, "eye_in_hand")
    collect(session, sim, views, grippers)
    gripper_matrices, detections = [g for g, _ in session.samples], [d.board_in_camera for _, d in session.samples]
    good = solve_hand_eye(gripper_matrices, detections, "eye_in_hand")
    gripper_matrices[3] = gripper_matrices[3].copy()
    gripper_matrices[3][:3, 3] += [0.02, 0.0, 0.0]
    bad = solve_hand_eye(gripper_matrices, detections, "eye_in_hand")
    assert bad.residual_mm > 3 * good.residual_mm and bad.residual_mm > 3.0


def test_too_few_samples_and_an_unseen_board_say_what_to_do(scene):
    board, sim = scene
    with pytest.raises(CalibrationError, match="at least 3 samples"):
        solve_hand_eye([np.eye(4)], [np.eye(4)], "eye_in_hand")
    away = look_at(np.array([0.0, 0.0, 0.5]), np.array([2.0, 0.0, 0.5]), 0.0)  # looking past the board
    with pytest.raises(CalibrationError, match="board not found .*bring all of it into view"):
        HandEyeSession(board, sim.intrinsics, "eye_in_hand").add(sim.render(away), np.array([0, 0, 0, 0, 0, 0, 1.0]))


def test_the_same_pose_twice_asks_for_more_rotation(scene):
    board, sim = scene
    view = views_of_the_board(np.random.default_rng(3), 1)[0]
    session = HandEyeSession(board, sim.intrinsics, "eye_in_hand")
    session.add(sim.render(view), matrix_to_pose(view))
    with pytest.raises(CalibrationError, match="rotated only 0.0 deg .*rotate the wrist more"):
        session.add(sim.render(view), matrix_to_pose(view))
