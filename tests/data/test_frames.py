"""The one crop-and-resize (data/frames.py) that conversion, training and inference share."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from video_policy_ros.data.frames import check_crops, parse_crop, resize, resize_frames
from video_policy_ros.model.config import VideoPolicyConfig


def scene(height: int, width: int) -> np.ndarray:
    """Sky above a table whose lower half holds a red square, at any resolution."""
    image = np.zeros((height, width, 3), np.uint8)
    image[: height // 2] = (90, 120, 200)
    image[height // 2:] = (170, 120, 80)
    image[int(0.7 * height):int(0.8 * height), int(0.45 * width):int(0.55 * width)] = (220, 20, 20)
    return image


def redness(frame: np.ndarray) -> int:
    """Pixels of a ``(H, W, 3)`` frame that are mostly the square's red."""
    return int(((frame[..., 0] > 150) & (frame[..., 1] < 90)).sum())


TABLE = (0.5, 0.25, 1.0, 0.75)  # the lower half, middle half of the width


def test_a_crop_is_cut_before_the_resize_so_a_small_object_keeps_its_pixels():
    whole, cropped = resize(scene(240, 320), (32, 32)), resize(scene(240, 320), (32, 32), TABLE)
    assert cropped.shape == whole.shape == (32, 32, 3)
    assert redness(cropped) >= 2 * max(redness(whole), 1)  # 4x the area, less the blended edge
    assert not (cropped[..., 2] > 150).any(), "the sky above the table was not cut away"


def test_one_crop_fits_a_camera_at_any_resolution():
    """Fractions of the frame: the 320x240 stream and its 64x48 recording give the model the same picture."""
    full, small = resize_frames(scene(240, 320), (16, 16), TABLE), resize_frames(scene(48, 64), (16, 16), TABLE)
    assert (full.int() - small.int()).abs().float().mean() < 6.0
    batch = resize_frames(np.stack([scene(240, 320)] * 3)[None], (16, 16), TABLE)  # (1, T, 3, H, W)
    assert batch.shape == (1, 3, 3, 16, 16) and bool((batch[0, 1] == full).all())


def test_a_crop_is_validated_against_the_cameras_and_the_frame():
    check_crops({"front": TABLE}, ("front", "wrist"))
    with pytest.raises(ValueError, match=r"crops for cameras \['side'\] that are not among cameras"):
        check_crops({"side": TABLE}, ("front", "wrist"))
    with pytest.raises(ValueError, match="crop of camera 'front' is .* 0 <= top < bottom <= 1"):
        check_crops({"front": (0.6, 0.0, 0.4, 1.0)}, ("front",))
    with pytest.raises(ValueError, match="crops for cameras"):
        VideoPolicyConfig.tiny(cameras=("front",), crops={"wrist": TABLE})
    assert VideoPolicyConfig.tiny(cameras=("front",), crops={"front": TABLE}).crops == {"front": TABLE}


def test_a_crop_on_the_command_line_is_camera_and_four_fractions():
    assert parse_crop("front=0.5,0.25,1,0.75") == ("front", TABLE)
    for bad in ("front", "front=0.5,0.25,1", "=0.5,0.25,1,0.75", "front=a,b,c,d"):
        with pytest.raises(ValueError, match="is not CAMERA=TOP,LEFT,BOTTOM,RIGHT"):
            parse_crop(bad)


def test_training_and_inference_feed_the_model_the_same_cropped_pixels(tmp_path):
    """The crop lives in the model's config (so in its checkpoint): the dataset and the policy's input both cut it."""
    from video_policy_ros.data.episode import Episode
    from video_policy_ros.model.dataset import EpisodeDataset, to_model_range
    from video_policy_ros.policies.inputs import camera_images
    from video_policy_ros.types import CameraFrame, Observation

    frames = np.stack([scene(240, 320)] * 3)
    pose = np.array([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0])
    Episode("touch the red cube", 10.0, {"front": frames}, np.stack([pose] * 3), np.full(3, 0.04)).save(tmp_path / "e.npz")
    cfg = VideoPolicyConfig.tiny(cameras=("front",), crops={"front": TABLE})
    trained_on = to_model_range(EpisodeDataset([tmp_path / "e.npz"], cfg, None).episodes[0]["frames"][:, 0])
    observation = Observation({"front": CameraFrame("front", 0.0, frames[0])}, pose, 0.04, "touch")
    fed = camera_images(observation, cfg.cameras, cfg.image_size, cfg.crops)[0]
    assert torch.equal(trained_on, fed)
    assert not torch.equal(fed, camera_images(observation, cfg.cameras, cfg.image_size, {})[0])
