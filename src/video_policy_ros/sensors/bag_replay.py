"""Recorded camera topics of a rosbag2 (MCAP) bag, replayed as if they were live.

Messages come out at their recorded pace (log time), on one clock for every topic, so the
skew between cameras is what it was when recording. "As if live": every header stamp is
moved by one constant (the wall time the replay started minus the log time of its first
message; :meth:`BagReplay.live_stamp`), so a frame measured 20 ms before it was logged
looks measured 20 ms before it is published. The CDR payload is handed on untouched; the
node deserialises it and applies the offset (this module knows no rclpy).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from video_policy_ros.config import BagReplayConfig, ConfigError

CAMERA_TOPIC = re.compile(r"^/cameras/(?P<name>[^/]+)/(image_raw|camera_info)$")


@dataclass(frozen=True)
class RecordedMessage:
    topic: str
    msgtype: str  # e.g. "sensor_msgs/msg/Image"
    data: bytes  # serialised CDR, as recorded
    log_time: float  # seconds, when the recorder received it


class BagReplay:
    def __init__(self, config: BagReplayConfig):
        from rosbags.rosbag2 import Reader
        from rosbags.rosbag2.errors import ReaderError

        if config.bag is None:
            raise ConfigError("bag_replay: set the bag to replay (-p bag:=/path/to/rosbag2_folder)")
        folder = config.bag.parent if config.bag.is_file() else config.bag  # a .mcap file inside its bag folder
        if not (folder / "metadata.yaml").is_file():
            raise ConfigError(f"{config.bag}: not a rosbag2 folder (no metadata.yaml next to the recording)")
        self.config = config
        self._reader = Reader(folder)
        try:
            self._reader.open()
        except ReaderError as exc:
            raise ConfigError(f"{config.bag}: cannot read the bag ({exc})") from None
        self.topics = self._select_topics({c.topic: c.msgtype for c in self._reader.connections})
        self._connections = [c for c in self._reader.connections if c.topic in self.topics]
        self._start_wall = self._first_log = 0.0

    def _select_topics(self, recorded: dict[str, str]) -> dict[str, str]:
        if self.config.cameras:
            wanted = [f"/cameras/{n}/{kind}" for n in self.config.cameras for kind in ("image_raw", "camera_info")]
            wanted = [t for t in wanted if t in recorded or t.endswith("image_raw")]  # camera_info is optional
        else:
            wanted = [t for t in recorded if CAMERA_TOPIC.match(t)]
        wanted += list(self.config.extra_topics)
        missing = [t for t in wanted if t not in recorded]
        if missing or not wanted:
            raise ConfigError(
                f"{self.config.bag}: {'topics ' + str(missing) + ' not' if missing else 'no camera topics'} in the bag; "
                f"it has {sorted(recorded)} (set cameras/extra_topics to recorded ones)"
            )
        return {t: recorded[t] for t in wanted}

    def messages(
        self, wall_clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep
    ) -> Iterator[RecordedMessage]:
        """One pass over the bag, each message yielded when it is due (its log time on the replay's clock)."""
        started = False
        for connection, log_time_ns, data in self._reader.messages(connections=self._connections):
            log_time = log_time_ns * 1e-9
            if not started:
                started, self._start_wall, self._first_log = True, wall_clock(), log_time
            wait = self.live_stamp(log_time) - wall_clock()
            if wait > 0:
                sleep(wait)
            yield RecordedMessage(connection.topic, connection.msgtype, bytes(data), log_time)

    def live_stamp(self, recorded_stamp: float) -> float:
        """A recorded header stamp, moved onto the replay's wall clock. At ``rate`` != 1 the intervals
        between stamps scale with the pace, so a message's age on arrival stays what it was live."""
        return self._start_wall + (recorded_stamp - self._first_log) / self.config.rate

    def close(self) -> None:
        self._reader.close()

    @property
    def duration_s(self) -> float:
        return self._reader.duration * 1e-9 / self.config.rate
