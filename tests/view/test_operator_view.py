"""The view's core and its feed, with Rerun's recording stream isolated (the browser test uses the real one):
which predicted frame is shown beside which camera frame, what the controller's state turns into, and
that live (rclpy) and recorded (rosbags) messages take the same path."""

from __future__ import annotations

import numpy as np
import pytest
import rerun as rr
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rclpy.serialization import serialize_message

from video_policy_ros.config import ViewConfig
from video_policy_ros.data.bag_reader import deserialize
from video_policy_ros.data.image_codec import decode_to_rgb
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.view_node import ViewFeed
from video_policy_ros.runtime.visualization import filmstrip
from video_policy_ros.types import ActionChunk, CameraFrame
from video_policy_ros.view.operator_view import OperatorView, split_filmstrip


class Logged:
    """Stands in for rr.RecordingStream: keeps (stamp, entity, archetype) of every log call."""

    def __init__(self):
        self.entries: list[tuple[float | None, str, object]] = []
        self.stamp: float | None = None

    def set_time(self, timeline: str, timestamp: float) -> None:
        self.stamp = timestamp

    def log(self, entity: str, archetype: object, static: bool = False) -> None:
        self.entries.append((None if static else self.stamp, entity, archetype))

    def at(self, entity: str) -> list[tuple[float | None, object]]:
        return [(stamp, archetype) for stamp, path, archetype in self.entries if path == entity]


def frames(count: int, height: int = 12, width: int = 16) -> np.ndarray:
    """Frame ``i`` is uniformly grey level 10 * (i + 1): a test can tell which one it sees."""
    return np.stack([np.full((height, width, 3), 10 * (i + 1), np.uint8) for i in range(count)])


def component(archetype, name: str):
    """The first value of one of an archetype's components, e.g. ``component(text_log, "text")``."""
    batches = {str(b.component_descriptor()).split(":")[-1]: b for b in archetype.as_component_batches()}
    return batches[name].as_arrow_array().to_pylist()[0]


def grey(image: rr.EncodedImage) -> int:
    """The grey level of a uniformly grey frame, as the page gets it (JPEG)."""
    return int(round(decode_to_rgb(bytes(component(image, "blob"))).mean()))


@pytest.mark.parametrize("height, width", [(12, 16), (64, 64), (200, 100)])
def test_a_filmstrip_splits_back_into_the_published_frames(height, width):
    video = frames(5, height, width)
    parts = split_filmstrip(filmstrip(video), (height, width))
    assert len(parts) == 5
    scale = parts[0].shape[0] // height
    for part, frame in zip(parts, video):
        assert np.array_equal(part[::scale, ::scale], frame)


def test_a_filmstrip_of_other_frames_is_refused():
    with pytest.raises(ValueError, match="is not made of 15x12 frames"):
        split_filmstrip(filmstrip(frames(4, 12, 16)), (12, 15))


def test_each_camera_frame_is_shown_beside_the_frame_predicted_for_its_moment():
    rec = Logged()
    view = OperatorView(rec, ["front"], camera_rate_hz=100.0)
    view.predicted_video("front", 100.0, filmstrip(frames(4)))  # before the inference node said its shape
    assert not rec.at("predicted/front")
    view.video_shape((12, 16), 0.4)
    camera = np.zeros((24, 32, 3), np.uint8)
    for t in (99.9, 100.05, 100.15, 100.42, 100.81, 101.19, 101.45, 101.7):
        view.camera("front", t, camera)
    shown = [(stamp, grey(image)) for stamp, image in rec.at("predicted/front")]
    # Before the prediction's moment: nothing; then frames 0..3 each once, at the first camera frame they
    # cover (nearest predicted moment); past the last predicted moment (101.2 + 0.2) nothing new.
    assert shown == [(100.05, 10), (100.42, 20), (100.81, 30), (101.19, 40)]
    assert len(rec.at("cameras/front")) == 8


def test_camera_frames_go_to_the_page_at_most_at_the_configured_rate_as_jpeg():
    rec = Logged()
    view = OperatorView(rec, ["front", "wrist"], camera_rate_hz=5.0, jpeg_quality=80)
    for i in range(30):  # 2 s of 15 Hz frames from each camera
        for camera in ("front", "wrist"):
            view.camera(camera, 100.0 + i / 15, np.full((24, 32, 3), 60, np.uint8))
    for camera in ("front", "wrist"):
        stamps = [stamp for stamp, _ in rec.at(f"cameras/{camera}")]
        assert len(stamps) == 10 and np.diff(stamps).min() > 0.199, stamps
    assert all(component(image, "media_type") == "image/jpeg" and grey(image) == 60 for _, image in rec.at("cameras/front"))


def test_the_controllers_rejections_stops_and_limits_are_shown_once_each():
    rec = Logged()
    view = OperatorView(rec, ["front"])
    state = {"chunks_accepted": "3", "chunks_rejected": "0", "last_rejection": "", "workspace_m": "0.3,-0.2,0.02,0.6,0.2,0.5",
             "limits": "TCP <= 0.25 m/s"}
    view.diagnostics(1.0, "controller", "ok", "executing", state)
    view.diagnostics(2.0, "controller", "ok", "executing", state)
    rejected = {**state, "chunks_rejected": "1", "last_rejection": "stale: chunk 0.9 s old"}
    view.diagnostics(3.0, "controller", "error", "stopped: e-stop", rejected)
    logs = [(stamp, component(entry, "text")) for stamp, entry in rec.at("log")]
    assert logs == [(1.0, "controller: executing"), (3.0, "chunk rejected: stale: chunk 0.9 s old"),
                    (3.0, "controller: stopped: e-stop")]
    (box,) = rec.at("path/workspace")
    assert box[0] is None  # static: the box stays whatever the time
    document = component(rec.at("controller/state")[-1][1], "text")
    assert "stopped: e-stop" in document and "TCP <= 0.25 m/s" in document and "3 accepted, 1 rejected" in document


def test_live_and_recorded_messages_take_the_same_path():
    """rclpy messages, and the same messages as rosbags decodes them from a bag, give the same calls."""
    image = conv.image_to_msg(CameraFrame("front", 5.0, np.full((12, 16, 3), 77, np.uint8)))
    pose = PoseStamped(header=conv.header(5.0, "fr3_link0"))
    pose.pose.position.x, pose.pose.position.z = 0.5, 0.2
    chunk, _ = conv.chunk_to_msgs(ActionChunk(5.0, 0.1, np.tile([0.5, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0], (4, 1)), np.zeros(4)))
    diagnostics = DiagnosticArray(header=conv.header(5.0, ""), status=[DiagnosticStatus(
        level=DiagnosticStatus.WARN, name="inference", message="slow", values=[KeyValue(key="latency_ms_p50", value="812")])])
    live = [("/cameras/front/image_raw", image), ("/ee_pose", pose), ("/policy/action_chunk", chunk),
            ("/diagnostics", diagnostics)]
    recorded = [(topic, deserialize(serialize_message(msg), type_name)) for (topic, msg), type_name in zip(
        live, ["sensor_msgs/msg/Image", "geometry_msgs/msg/PoseStamped", "trajectory_msgs/msg/MultiDOFJointTrajectory",
               "diagnostic_msgs/msg/DiagnosticArray"])]
    seen = []
    for messages in (live, recorded):
        rec = Logged()
        feed = ViewFeed(OperatorView(rec, ["front"]), ViewConfig(cameras=("front",)))
        for topic, msg in messages:
            feed.handle(topic, msg)
        assert not feed.dropped
        seen.append([(stamp, path, type(archetype).__name__) for stamp, path, archetype in rec.entries])
    assert seen[0] == seen[1]
    assert [path for _, path, _ in seen[0]] == ["cameras/front", "path/executed", "path/tcp", "path/predicted",
                                               "latency/latency_ms_p50", "inference/budget"]


def test_a_malformed_message_is_dropped_with_its_reason_and_the_view_goes_on():
    rec = Logged()
    feed = ViewFeed(OperatorView(rec, ["front"]), ViewConfig(cameras=("front",)))
    bad = conv.image_to_msg(CameraFrame("front", 1.0, np.zeros((4, 4, 3), np.uint8)))
    bad.encoding = "mono16"
    feed.handle("/cameras/front/image_raw", bad)
    assert "mono16" in feed.dropped["/cameras/front/image_raw"]
    feed.handle("/cameras/front/image_raw", conv.image_to_msg(CameraFrame("front", 2.0, np.zeros((4, 4, 3), np.uint8))))
    assert [path for _, path, _ in rec.entries] == ["cameras/front"]
