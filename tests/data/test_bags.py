"""Recorded bags: rosbag2 MCAP that rosbags (our reader) and the mcap library (independent) both read."""

import json
import time

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import serialize_message
from std_msgs.msg import String

from tests.data.bags import T0, tcp_pose, write_bag
from video_policy_ros.data.bag_reader import BagReadError, read_bag
from video_policy_ros.data.bag_writer import McapBagWriter
from video_policy_ros.data.events import make_event, parse_event
from video_policy_ros.data.recording import DISCARDED_FOLDER, EpisodeRecorder


def read_independently(mcap_path) -> dict[str, list]:
    """Every message decoded by the mcap library from the schemas stored in the file, through the
    file's summary and chunk index (what Foxglove and rosbag2's MCAP plugin use to seek)."""
    messages: dict[str, list] = {}
    with mcap_path.open("rb") as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        summary = reader.get_summary()
        assert reader.get_header().profile == "ros2" and summary.chunk_indexes
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {c.message_encoding for c in summary.channels.values()} == {"cdr"}
        for _, channel, _, decoded in reader.iter_decoded_messages():
            messages.setdefault(channel.topic, []).append(decoded)
        assert sum(map(len, messages.values())) == summary.statistics.message_count
    return messages


def test_bag_is_read_back_by_rosbags_and_by_the_independent_mcap_reader(tmp_path):
    path = write_bag(tmp_path, seconds=1.0)
    ours = read_bag(path)
    assert not ours.truncated and not ours.warnings
    assert ours.msgtypes["/cameras/front/image_raw/compressed"] == "sensor_msgs/msg/CompressedImage"
    assert ours.msgtypes["/joint_states"] == "sensor_msgs/msg/JointState"

    independent = read_independently(next(path.glob("*.mcap")))
    assert {t: len(v) for t, v in independent.items()} == {t: len(v) for t, v in ours.topics.items()}
    last = independent["/ee_pose"][-1]
    stamp = last.header.stamp.sec + last.header.stamp.nanosec * 1e-9
    p = last.pose
    np.testing.assert_allclose([p.position.x, p.orientation.w], tcp_pose(stamp - T0)[[0, 6]], atol=1e-9)
    assert [m.data for m in independent["/task"]] == ["touch the red cube"]  # sent before the episode started
    events = [parse_event(m.data)["event"] for m in independent["/episode/events"]]
    assert events == ["start", "success", "stop"]


def test_metadata_holds_the_episode_and_the_files_for_ros2_bag_info(tmp_path):
    path = write_bag(tmp_path, seconds=0.5)
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["storage_identifier"] == "mcap" and info["relative_file_paths"] == [f"{path.name}.mcap"]
    episode = json.loads(info["custom_data"]["episode"])
    assert episode["task"] == "touch the red cube" and episode["seed"] == 7 and episode["success"] is True
    assert episode["cameras"]["front"]["width"] == 64 and len(episode["cameras"]["wrist"]["k"]) == 9
    counts = {t["topic_metadata"]["name"]: t["message_count"] for t in info["topics_with_message_count"]}
    assert counts["/ee_pose"] == 51 and counts["/cameras/front/camera_info"] == 8
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"] for t in info["topics_with_message_count"]}
    assert qos["/task"][0]["durability"] == "transient_local" and qos["/ee_pose"] == []  # /task replays latched


def test_raw_images_with_zstd_chunks_read_back_exactly(tmp_path):
    bag = read_bag(write_bag(tmp_path, seconds=0.5, encoding="raw"))
    image = bag.messages("/cameras/wrist/image_raw")[3]
    assert image.encoding == "rgb8" and np.all(np.asarray(image.data) == 21)  # frame_value(3)


def test_discarded_episode_moves_aside_and_a_new_start_closes_an_open_one(tmp_path):
    recorder = EpisodeRecorder(tmp_path, lambda event: b"")  # events are not decoded here
    recorder.handle_event(make_event("start", "operator"))
    first = recorder.bag.path
    recorder.handle_event(make_event("start", "operator"))  # the first episode ends without a verdict
    recorder.handle_event(make_event("discard", "operator"))
    assert [p for p, _ in recorder.finished] == [first] and (first / "metadata.yaml").is_file()
    discarded = list((tmp_path / DISCARDED_FOLDER).iterdir())
    assert len(discarded) == 1 and (discarded[0] / "metadata.yaml").is_file()


def test_events_outside_an_episode_are_ignored_and_unknown_kinds_rejected(tmp_path):
    recorder = EpisodeRecorder(tmp_path, lambda event: b"")
    recorder.handle_event(make_event("success", "operator"))
    assert not recorder.recording and not list(tmp_path.iterdir())
    assert parse_event('{"event": "explode"}') is None and parse_event("not json") is None
    with pytest.raises(ValueError, match="unknown episode event"):
        make_event("explode", "test")


def test_an_open_bag_reaches_the_disk_within_the_chunk_period_even_when_messages_stop(tmp_path):
    writer = McapBagWriter(tmp_path / "open", chunk_period_s=0.05)
    writer.write("/task", "std_msgs/msg/String", 1, serialize_message(String(data="touch the red cube")))
    assert read_bag_message_count(writer.mcap_path) == 0  # still in the open chunk
    time.sleep(0.1)
    writer.flush_if_due()  # what the recorder's timer does while nothing arrives
    bag = read_bag(writer.path)  # not closed: read as a truncated bag
    assert bag.truncated and bag.messages("/task")[0].data == "touch the red cube"


def read_bag_message_count(mcap_path) -> int:
    try:
        return sum(len(v) for v in read_bag(mcap_path).topics.values())
    except BagReadError:
        return 0
