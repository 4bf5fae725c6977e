"""A recorded bag → one training :class:`Episode`, at the policy rate. No ROS here.

The episode's time grid runs at ``fps`` over the span that every used stream covers,
in *measurement* time (header stamps). Each grid step takes, per camera, the latest
frame measured at or before it (resized to ``image_size``), and the TCP pose
(linear / slerp) and gripper interpolated from ``/ee_pose`` and ``/joint_states``.
A bag without ``/ee_pose`` becomes an action-free (video-only) episode.

Faults are reported, not hidden: dropped frames and gaps are warnings; a clock jump
(a stamp going backwards, or leaping ahead of the recorder's receive clock) keeps the longest consistent stretch with a warning; what makes a
bag unusable (a camera missing, too short, an unknown image encoding) raises
:class:`ConversionError` with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from video_policy_ros.data.bag_reader import RecordedBag
from video_policy_ros.data.episode import Episode
from video_policy_ros.data.frames import resize
from video_policy_ros.data.events import parse_event
from video_policy_ros.data.image_codec import decode_to_rgb
from video_policy_ros.data.resample import clock_jumps, gaps, interpolate_poses, latest_before
from video_policy_ros.errors import StackError
from video_policy_ros.types import FR3_FINGER_JOINT

DROPPED_FRAME_FACTOR = 1.5  # a frame interval longer than 1.5 median intervals lost at least one frame
MAX_STATE_GAP_S = 0.2  # /ee_pose and /joint_states come at >= 100 Hz


class ConversionError(StackError):
    """A bag or video cannot become an episode; the message says why and what to do."""


@dataclass(frozen=True)
class ConvertOptions:
    fps: float = 10.0  # the policy rate: frames and actions per second in the episode
    image_size: tuple[int, int] | None = None  # (H, W); None keeps the recorded size
    cameras: tuple[str, ...] | None = None  # None: every recorded camera
    instruction: str | None = None  # overrides the recorded task text
    max_clock_jump_s: float = 0.5


@dataclass
class Stream:
    """One topic's messages sorted by measurement stamp (seconds); ``receive`` is the recorder's clock."""

    stamps: np.ndarray
    receive: np.ndarray
    messages: list[Any]

    def window(self, lo: float, hi: float) -> "Stream":
        keep = (self.receive >= lo) & (self.receive < hi)
        return Stream(self.stamps[keep], self.receive[keep], [m for m, k in zip(self.messages, keep) if k])


@dataclass
class Conversion:
    episode: Episode
    warnings: list[str] = field(default_factory=list)


def _stamp(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _stream(bag: RecordedBag, topic: str) -> Stream | None:
    entries = bag.topics.get(topic)
    if not entries:
        return None
    receive = np.array([ns * 1e-9 for ns, _ in entries])
    stamps = np.array([_stamp(m) for _, m in entries])
    return Stream(stamps, receive, [m for _, m in entries])


def recorded_cameras(bag: RecordedBag) -> dict[str, str]:
    """camera name → its image topic (``image_raw`` or ``image_raw/compressed``)."""
    found = {}
    for topic in sorted(bag.topics):
        parts = topic.split("/")
        if len(parts) >= 4 and parts[1] == "cameras" and parts[3] == "image_raw":
            found.setdefault(parts[2], topic)
    return found


def decode_image(msg: Any, topic: str) -> np.ndarray:
    """A decoded sensor_msgs Image / CompressedImage → ``(H, W, 3)`` RGB uint8."""
    if hasattr(msg, "format"):  # CompressedImage
        image = decode_to_rgb(np.asarray(msg.data, np.uint8))
        if image is None:
            raise ConversionError(f"{topic}: a CompressedImage ({msg.format}) does not decode (corrupt data)")
        return image
    if msg.encoding not in ("rgb8", "bgr8"):
        raise ConversionError(f"{topic}: image encoding '{msg.encoding}' is not supported; record rgb8 or bgr8")
    image = np.asarray(msg.data, np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(msg.height, msg.width, 3)
    return np.ascontiguousarray(image[..., ::-1] if msg.encoding == "bgr8" else image)


def _cut_clock_jumps(streams: dict[str, Stream], max_jump_s: float, warnings: list[str]) -> dict[str, Stream]:
    cuts = sorted({float(s.receive[i]) for s in streams.values() for i in clock_jumps(s.stamps, s.receive, max_jump_s)})
    if not cuts:
        return streams
    lo = min(float(s.receive[0]) for s in streams.values())
    hi = max(float(s.receive[-1]) for s in streams.values()) + 1e-9
    bounds = [lo, *cuts, hi]
    start, end = max(zip(bounds[:-1], bounds[1:]), key=lambda b: b[1] - b[0])
    warnings.append(f"{len(cuts)} clock jump(s) in the header stamps (first {cuts[0] - lo:.2f} s into the bag): "
                    f"kept the longest consistent stretch, {end - start:.1f} s of {hi - lo:.1f} s")
    return {name: s.window(start, end) for name, s in streams.items()}


def _sorted(stream: Stream) -> Stream:
    order = np.argsort(stream.stamps, kind="stable")
    return Stream(stream.stamps[order], stream.receive[order], [stream.messages[i] for i in order])


def _verdict(bag: RecordedBag) -> bool | None:
    if bag.episode is not None and bag.episode.get("success") is not None:
        return bool(bag.episode["success"])
    verdicts = [e["event"] for e in (parse_event(m.data) for m in bag.messages("/episode/events"))
                if e and e["event"] in ("success", "failure")]
    return verdicts[-1] == "success" if verdicts else None


def _instruction(bag: RecordedBag, opts: ConvertOptions, warnings: list[str]) -> str:
    if opts.instruction is not None:
        return opts.instruction
    if bag.episode and bag.episode.get("task"):
        return bag.episode["task"]
    tasks = bag.messages("/task")
    if tasks:
        return tasks[-1].data
    starts = [e.get("task") for e in (parse_event(m.data) for m in bag.messages("/episode/events")) if e]
    if any(starts):
        return next(t for t in reversed(starts) if t)
    warnings.append("no task text (/task or episode metadata): instruction left empty (pass --instruction)")
    return ""


def convert_bag(bag: RecordedBag, opts: ConvertOptions) -> Conversion:
    warnings = list(bag.warnings)
    available = recorded_cameras(bag)
    cameras = opts.cameras or tuple(available)
    missing = [c for c in cameras if c not in available]
    if not cameras or missing:
        raise ConversionError(f"no images for camera(s) {missing or 'any'} (recorded cameras: {sorted(available)}); "
                              "record them or pass --cameras with the recorded ones")
    streams = _used_streams(bag, {cam: available[cam] for cam in cameras}, warnings)
    streams = {name: _sorted(s) for name, s in _cut_clock_jumps(streams, opts.max_clock_jump_s, warnings).items()}
    if any(len(s.stamps) == 0 for s in streams.values()):
        raise ConversionError("a stream is empty after the clock jump: the bag has no consistent stretch to convert")
    # 1. the grid: every used stream covers it
    t0 = max(s.stamps[0] for s in streams.values())
    t1 = min(s.stamps[-1] for s in streams.values())
    count = int(np.floor((t1 - t0) * opts.fps + 1e-9)) + 1
    if t1 < t0 or count < 2:
        raise ConversionError(f"the streams overlap for {max(t1 - t0, 0):.2f} s, too short for 2 steps at "
                              f"{opts.fps:g} fps (was the episode stopped at once?)")
    times = t0 + np.arange(count) / opts.fps
    # 2. frames: the latest one measured at or before each step
    frames = {cam: _frames_at(streams[cam], available[cam], times, opts.image_size, warnings) for cam in cameras}
    # 3. actions: TCP pose and gripper interpolated at each step
    tcp_poses = gripper = None
    if "/ee_pose" in streams:
        tcp_poses, gripper = _state_at(streams["/ee_pose"], streams["/joint_states"], times, warnings)
    episode = Episode(_instruction(bag, opts, warnings), opts.fps, frames, tcp_poses, gripper, _verdict(bag))
    return Conversion(episode, warnings)


def _used_streams(bag: RecordedBag, camera_topics: dict[str, str], warnings: list[str]) -> dict[str, Stream]:
    """The cameras' streams, plus /ee_pose and /joint_states when both are there (else video only)."""
    streams = {cam: _stream(bag, topic) for cam, topic in camera_topics.items()}
    ee_pose, joint_states = _stream(bag, "/ee_pose"), _stream(bag, "/joint_states")
    if ee_pose is None:
        warnings.append("no /ee_pose: written as an action-free (video-only) episode")
    elif joint_states is None:
        warnings.append("/ee_pose without /joint_states (no gripper): written as an action-free episode")
    else:
        streams.update({"/ee_pose": ee_pose, "/joint_states": joint_states})
    return streams


def _frames_at(stream: Stream, topic: str, times: np.ndarray, size: tuple[int, int] | None,
               warnings: list[str]) -> np.ndarray:
    camera = topic.split("/")[2]
    period = float(np.median(np.diff(stream.stamps))) if len(stream.stamps) > 1 else 0.0
    lost = gaps(stream.stamps, DROPPED_FRAME_FACTOR * period) if period > 0 else []
    if lost:
        missed = sum(int(round(length / period)) - 1 for _, length in lost)
        warnings.append(f"camera '{camera}': about {missed} dropped frame(s) in {len(lost)} gap(s), "
                        f"longest {max(g for _, g in lost):.2f} s (the previous frame is held)")
    return np.stack([resize(decode_image(stream.messages[i], topic), size) for i in latest_before(stream.stamps, times)])


def _state_at(ee_pose: Stream, joint_states: Stream, times: np.ndarray,
              warnings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    for name, stream in (("/ee_pose", ee_pose), ("/joint_states", joint_states)):
        if lost := gaps(stream.stamps, MAX_STATE_GAP_S):
            warnings.append(f"{name}: {len(lost)} gap(s) longer than {MAX_STATE_GAP_S} s, longest "
                            f"{max(g for _, g in lost):.2f} s (interpolated across)")
    recorded = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z, m.pose.orientation.x,
                          m.pose.orientation.y, m.pose.orientation.z, m.pose.orientation.w] for m in ee_pose.messages])
    finger = np.array([_finger(m) for m in joint_states.messages])
    return interpolate_poses(ee_pose.stamps, recorded, times), np.interp(times, joint_states.stamps, finger)


def _finger(msg: Any) -> float:
    names = list(msg.name)
    if FR3_FINGER_JOINT not in names:
        raise ConversionError(f"/joint_states has no '{FR3_FINGER_JOINT}' (joints: {names}): the gripper is unknown")
    return float(msg.position[names.index(FR3_FINGER_JOINT)])
