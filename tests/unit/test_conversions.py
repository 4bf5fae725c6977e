"""Message conversion round trips (real ROS message classes, no middleware)."""

import numpy as np
import pytest

from video_policy_ros.nodes import conversions as conv
from video_policy_ros.types import ActionChunk, ArmState, CameraFrame


def test_time_roundtrip():
    for stamp in [0.0, 1.5, 1795454575.000237, 12.999999999, 5.9999999999]:
        assert conv.from_time(conv.to_time(stamp)) == pytest.approx(stamp, abs=2e-9)
    # a fraction that rounds up to a whole second carries (it once became 5 s 0 ns: a second early)
    assert (conv.to_time(5.9999999999).sec, conv.to_time(5.9999999999).nanosec) == (6, 0)
    assert (conv.to_duration(0.9999999996).sec, conv.to_duration(0.9999999996).nanosec) == (1, 0)


def test_a_stamp_passed_on_through_float_seconds_stays_within_a_microsecond():
    """A chunk carries its image's stamp as float seconds, which resolve ~0.24 us at today's epoch time."""
    for nanosec in range(0, 1_000_000_000, 7_654_321):
        image_stamp = conv.Time(sec=1796590406, nanosec=nanosec)
        passed_on = conv.to_time(conv.from_time(image_stamp))
        assert passed_on.sec == image_stamp.sec and abs(passed_on.nanosec - nanosec) < 1000


def test_image_roundtrip_keeps_pixels_and_stamp():
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    msg = conv.image_to_msg(CameraFrame("front", 123.25, image))
    assert (msg.encoding, msg.width, msg.height, msg.step) == ("rgb8", 32, 24, 96)
    assert msg.header.frame_id == "front_color_optical_frame"
    back = conv.frame_from_msg("front", msg)
    assert back.stamp == pytest.approx(123.25) and np.array_equal(back.image, image)


def test_a_compressed_image_roundtrip_keeps_the_picture_and_stamp_and_refuses_garbage():
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:40] = (200, 40, 10)  # a red block: JPEG keeps its colour and place
    msg = conv.compressed_image_msg(CameraFrame("front", 7.5, image), "jpeg", 90)
    assert msg.format == "rgb8; jpeg compressed bgr8" and msg.header.frame_id == "front_color_optical_frame"
    back = conv.frame_from_compressed_msg("front", msg)
    assert back.stamp == pytest.approx(7.5) and np.abs(back.image.astype(int) - image).mean() < 3
    msg.data = b"not a jpeg"
    with pytest.raises(conv.MessageError, match="image_raw/compressed: rgb8; jpeg compressed bgr8 does not decode"):
        conv.frame_from_compressed_msg("front", msg)


def test_bgr_is_converted_and_garbage_refused():
    msg = conv.image_to_msg(CameraFrame("front", 1.0, np.tile(np.array([1, 2, 3], np.uint8), (2, 2, 1))))
    msg.encoding = "bgr8"
    assert conv.frame_from_msg("front", msg).image[0, 0].tolist() == [3, 2, 1]
    msg.encoding = "mono8"
    with pytest.raises(conv.MessageError, match="rgb8"):
        conv.frame_from_msg("front", msg)
    msg.encoding, msg.data = "rgb8", b"\x00" * 5
    with pytest.raises(conv.MessageError, match="bytes"):
        conv.frame_from_msg("front", msg)


def test_chunk_roundtrip_through_both_messages():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(8, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    chunk = ActionChunk(100.5, 0.1, np.hstack([rng.normal(size=(8, 3)), q]), rng.uniform(0, 0.04, 8))
    poses, gripper = conv.chunk_to_msgs(chunk)
    assert poses.joint_names == ["fr3_hand_tcp"] and gripper.joint_names == ["fr3_finger_joint1"]
    assert poses.header.stamp == gripper.header.stamp and poses.header.frame_id == "fr3_link0"
    back = conv.chunk_from_msgs(poses, gripper, hold_gripper=0.0)
    assert back.stamp == pytest.approx(100.5) and back.dt == pytest.approx(0.1)
    np.testing.assert_allclose(back.poses, chunk.poses)
    np.testing.assert_allclose(back.gripper, chunk.gripper)
    held = conv.chunk_from_msgs(poses, None, hold_gripper=0.03)
    np.testing.assert_allclose(held.gripper, 0.03)


def test_chunk_with_wrong_joint_is_refused():
    poses, _ = conv.chunk_to_msgs(ActionChunk(0.0, 0.1, np.array([[0.5, 0, 0.3, 1, 0, 0, 0]]), np.zeros(1)))
    poses.joint_names = ["panda_hand"]
    with pytest.raises(conv.MessageError, match="fr3_hand_tcp"):
        conv.chunk_from_msgs(poses, None, 0.0)


def test_joint_state_has_the_contract_joints_and_filled_effort():
    msg = conv.joint_state_msg(ArmState(5.0, np.arange(7.0), np.zeros(7), np.array([0.5, 0, 0.3, 1, 0, 0, 0]), 0.02))
    assert msg.name == [f"fr3_joint{i}" for i in range(1, 8)] + ["fr3_finger_joint1"]
    assert list(msg.position)[-1] == 0.02 and len(msg.effort) == 8
    assert conv.gripper_from_joint_state(msg) == 0.02
