import numpy as np
import pytest

from video_policy_ros import geometry as g


def random_quat(rng):
    return g.quat_normalize(rng.normal(size=4))


def test_rotvec_roundtrip_batched_including_near_pi_and_tiny_angles():
    rng = np.random.default_rng(0)
    r = rng.normal(size=(100, 3))
    r = r / np.linalg.norm(r, axis=1, keepdims=True) * rng.uniform(0, np.pi - 1e-3, (100, 1))
    assert np.allclose(g.quat_to_rotvec(g.rotvec_to_quat(r)), r, atol=1e-9)
    assert np.allclose(g.quat_to_rotvec(np.array([0.0, 0, 0, 1])), 0)
    assert np.allclose(g.rotvec_to_quat(np.array([1e-12, 0, 0])), [5e-13, 0, 0, 1])


def test_matrix_roundtrip():
    rng = np.random.default_rng(1)
    for _ in range(50):
        q = random_quat(rng)
        back = g.matrix_to_quat(g.quat_to_matrix(q))
        assert min(np.abs(back - q).max(), np.abs(back + q).max()) < 1e-9


def test_delta_roundtrip_and_known_rotation():
    ref = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    quarter_turn_z = np.concatenate([[0.6, 0.1, 0.2], g.rotvec_to_quat(np.array([0, 0, np.pi / 2]))])
    target = g.apply_delta(ref, g.pose_delta(ref, quarter_turn_z))
    np.testing.assert_allclose(target[:3], quarter_turn_z[:3])
    assert abs(abs(np.dot(target[3:], quarter_turn_z[3:])) - 1) < 1e-9
    np.testing.assert_allclose(g.rotation_error(g.rotvec_to_quat(np.array([0, 0, 0.3])), [0, 0, 0, 1.0]), [0, 0, 0.3])


@pytest.mark.parametrize("s", [0.0, 0.25, 0.5, 1.0])
def test_slerp_angle_is_proportional(s):
    q0 = np.array([0, 0, 0, 1.0])
    q1 = g.rotvec_to_quat(np.array([0.0, 1.2, 0.0]))
    angle = np.linalg.norm(g.quat_to_rotvec(g.slerp(q0, q1, s)))
    assert angle == pytest.approx(1.2 * s, abs=1e-9)
