"""Bags (and mp4 videos) → Episode files: resampling, resizing, determinism and fault reports."""

import imageio.v2 as imageio
import numpy as np
import pytest

from tests.data.bags import frame_value, gripper, tcp_pose, write_bag
from video_policy_ros.cli import main as cli
from video_policy_ros.data.bag_reader import read_bag
from video_policy_ros.data.converter import ConversionError, ConvertOptions, convert_bag
from video_policy_ros.data.episode import Episode


def test_actions_are_resampled_from_the_recorded_poses_and_frames_resized(tmp_path):
    result = convert_bag(read_bag(write_bag(tmp_path, seconds=2.0)), ConvertOptions(fps=10.0, image_size=(16, 24)))
    ep = result.episode
    assert result.warnings == []
    assert len(ep) == 21 and ep.fps == 10.0 and ep.instruction == "touch the red cube" and ep.success is True
    assert ep.frames["front"].shape == (21, 16, 24, 3) and list(ep.frames) == ["front", "wrist"]
    times = np.arange(21) / 10.0
    expected = np.stack([tcp_pose(t) for t in times])
    np.testing.assert_allclose(ep.tcp_poses[:, :3], expected[:, :3], atol=1e-9)
    np.testing.assert_allclose(np.abs(np.sum(ep.tcp_poses[:, 3:] * expected[:, 3:], axis=1)), 1.0, atol=1e-9)
    np.testing.assert_allclose(ep.gripper, [gripper(t) for t in times], atol=1e-9)
    # step k shows the latest camera frame measured at or before k / 10 s (camera at 15 fps)
    picked = [int(np.floor(k / 10.0 * 15.0 + 1e-9)) for k in range(21)]
    np.testing.assert_allclose(ep.frames["wrist"][:, 8, 12, 0], [frame_value(i) for i in picked], atol=3)


def test_conversion_is_deterministic_to_the_byte_and_writes_stats(tmp_path):
    bags = tmp_path / "bags"
    write_bag(bags, seconds=1.0)
    for out in ("a", "b"):
        assert cli(["convert", str(bags), "--out", str(tmp_path / out), "--size", "16", "16"]) == 0
    (a,), (b,) = sorted((tmp_path / "a").glob("*.npz")), sorted((tmp_path / "b").glob("*.npz"))
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "a" / "stats.json").read_text() == (tmp_path / "b" / "stats.json").read_text()
    assert Episode.load(a).has_actions


def test_model_config_sets_frame_size_and_cameras(tmp_path):
    bags = tmp_path / "bags"
    write_bag(bags, seconds=1.0)
    (tmp_path / "tiny.yaml").write_text("preset: tiny\ncameras: [wrist]\nlead_camera: wrist\n")
    assert cli(["convert", str(bags), "--out", str(tmp_path / "ds"), "--model-config", str(tmp_path / "tiny.yaml")]) == 0
    (episode_file,) = (tmp_path / "ds").glob("*.npz")
    assert {c: f.shape for c, f in Episode.load(episode_file).frames.items()} == {"wrist": (11, 32, 32, 3)}


def test_empty_effort_joint_states_read_and_corrupt_messages_skipped_with_a_warning(tmp_path):
    corrupt = [(0.5, "/ee_pose", "geometry_msgs/msg/PoseStamped", b"\x00\x01\x00\x00garbage")]
    bag = read_bag(write_bag(tmp_path, seconds=1.0, empty_effort=True, extra=corrupt))
    assert bag.warnings == ["/ee_pose: 1 message(s) could not be decoded and were skipped"]
    assert len(bag.messages("/joint_states")[0].effort) == 0
    episode = convert_bag(bag, ConvertOptions()).episode
    np.testing.assert_allclose(episode.gripper, [gripper(k / 10.0) for k in range(11)], atol=1e-9)


def test_bag_without_state_becomes_a_video_only_episode(tmp_path):
    result = convert_bag(read_bag(write_bag(tmp_path, seconds=1.0, with_state=False)), ConvertOptions())
    assert not result.episode.has_actions and len(result.episode) == 11
    assert any("action-free" in w for w in result.warnings)


def test_mp4_folder_becomes_action_free_episodes(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    with imageio.get_writer(videos / "clip.mp4", fps=20, codec="libx264", macro_block_size=8) as writer:
        for i in range(40):
            writer.append_data(np.full((32, 48, 3), frame_value(i), np.uint8))
    (videos / "clip.txt").write_text("stack the blue cube\n")
    assert cli(["convert", str(videos), "--out", str(tmp_path / "ds"), "--size", "16", "16", "--fps", "5"]) == 0
    ep = Episode.load(tmp_path / "ds" / "clip.npz")
    assert ep.instruction == "stack the blue cube" and not ep.has_actions
    assert ep.frames["front"].shape == (10, 16, 16, 3)  # 1.95 s of video at 5 fps
    np.testing.assert_allclose(ep.frames["front"][:, 8, 8, 0], [frame_value(4 * k) for k in range(10)], atol=4)


def test_episode_files_are_resized_like_the_policy_input_and_can_lose_their_actions(tmp_path):
    from video_policy_ros.data.frames import resize_frames

    rng = np.random.default_rng(0)
    frames = {c: rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8) for c in ("front", "wrist")}
    poses = np.tile([0.5, 0.0, 0.3, 1.0, 0.0, 0.0, 0.0], (6, 1))
    Episode("touch the red cube", 10.0, frames, poses, np.full(6, 0.04), True).save(tmp_path / "raw" / "episode_00001.npz")
    assert cli(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "ds"), "--size", "16", "16",
                "--cameras", "front"]) == 0
    ep = Episode.load(tmp_path / "ds" / "episode_00001.npz")
    assert list(ep.frames) == ["front"] and ep.has_actions and ep.success is True
    # the pixels the policy would compute from the full-size frame at inference
    np.testing.assert_array_equal(ep.frames["front"], resize_frames(frames["front"], (16, 16)).permute(0, 2, 3, 1).numpy())
    assert cli(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "videos"), "--action-free"]) == 0
    assert not Episode.load(tmp_path / "videos" / "episode_00001.npz").has_actions
    assert cli(["convert", str(tmp_path / "raw"), "--out", str(tmp_path / "x"), "--fps", "5"]) == 1  # not resampled


def test_dropped_frames_are_reported_and_the_previous_frame_held(tmp_path):
    result = convert_bag(read_bag(write_bag(tmp_path, seconds=2.0, drop_frames=range(10, 16))), ConvertOptions())
    assert any("camera 'front': about 6 dropped frame(s)" in w for w in result.warnings)
    assert result.episode.frames["front"][8, 0, 0, 0] == pytest.approx(frame_value(9), abs=3)  # t = 0.8 s holds frame 9


def test_clock_jump_keeps_the_longest_consistent_stretch(tmp_path):
    bag = read_bag(write_bag(tmp_path, seconds=3.0, clock_jump=(2.0, 50.0)))
    result = convert_bag(bag, ConvertOptions(fps=10.0))
    assert any("clock jump" in w and "2.0 s of 3.0 s" in w for w in result.warnings)
    assert len(result.episode) == 20  # 0 .. 1.99 s, before the jump
    np.testing.assert_allclose(result.episode.tcp_poses[-1, 0], tcp_pose(1.9)[0], atol=1e-9)
    assert result.episode.tcp_poses[0, 0] == pytest.approx(tcp_pose(0.0)[0])


def test_truncated_bag_is_read_to_its_last_chunk_with_a_warning(tmp_path):
    path = write_bag(tmp_path, seconds=4.0, encoding="raw")  # raw images fill several 1 MiB chunks
    mcap = next(path.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.6)])
    (path / "metadata.yaml").unlink()  # as after kill -9: rosbags writes it on close
    bag = read_bag(path)
    assert bag.truncated and "truncated" in bag.warnings[0]
    result = convert_bag(bag, ConvertOptions())
    assert any("truncated" in w for w in result.warnings)
    assert 5 <= len(result.episode) < 40
    times = np.arange(len(result.episode)) / 10.0
    np.testing.assert_allclose(result.episode.tcp_poses[:, 0], [tcp_pose(t)[0] for t in times], atol=1e-9)


def test_missing_camera_is_one_error_line_and_written_episodes_stay(tmp_path, capsys):
    bags = tmp_path / "bags"
    good = write_bag(bags, seconds=1.0)
    write_bag(bags, seconds=1.0, cameras=("front",))
    out = tmp_path / "ds"
    assert cli(["convert", str(bags), "--out", str(out), "--cameras", "front,wrist"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no images for camera(s) ['wrist']" in errors[0] and "--cameras" in errors[0]
    assert [p.name for p in out.glob("*.npz")] == [f"{good.name}.npz"]
    # a second run keeps what exists and fails the same way, without a traceback
    assert cli(["convert", str(bags), "--out", str(out), "--cameras", "front,wrist"]) == 1
    assert "Traceback" not in capsys.readouterr().err


def test_unusable_inputs_fail_with_what_to_do(tmp_path, capsys):
    assert cli(["convert", str(tmp_path / "nowhere"), "--out", str(tmp_path / "ds")]) == 2
    assert capsys.readouterr().err.strip() == f"error: input not found: {tmp_path / 'nowhere'}"
    short = write_bag(tmp_path / "bags", seconds=0.05)
    with pytest.raises(ConversionError, match="too short"):
        convert_bag(read_bag(short), ConvertOptions())


def test_failed_episodes_are_skipped_unless_asked_for(tmp_path, capsys):
    bags = tmp_path / "bags"
    failed = write_bag(bags, seconds=1.0, verdict="failure")
    assert cli(["convert", str(bags), "--out", str(tmp_path / "ds")]) == 0
    assert "recorded as a failure, skipped (pass --include-failures)" in capsys.readouterr().err
    assert not list((tmp_path / "ds").glob("*.npz"))
    assert cli(["convert", str(bags), "--out", str(tmp_path / "ds"), "--include-failures"]) == 0
    assert Episode.load(tmp_path / "ds" / f"{failed.name}.npz").success is False
