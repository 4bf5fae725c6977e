"""Episode recording core: one bag per episode, driven by episode events. No ROS here.

Events (``start``, ``stop``, ``success``, ``failure``, ``discard``) come from the sim
world (on ``/episode/events``), from an operator (services, keyboard) or from the
recorder itself. Every event is a small JSON object, see :func:`make_event`, and is
written into the bag on ``/episode/events``, so a bag cut short still says how far
its episode got. After ``success``/``failure`` the recorder keeps recording for
``stop_delay_s`` (the touch itself belongs in the demonstration), then closes the bag.
A discarded episode's bag moves to ``<output_dir>/discarded/``: nothing is deleted.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from video_policy_ros.data.bag_writer import McapBagWriter
from video_policy_ros.data.events import EVENT_MSGTYPE, EVENTS_TOPIC, make_event

log = logging.getLogger(__name__)

DISCARDED_FOLDER = "discarded"
TASK_TOPIC, TASK_MSGTYPE = "/task", "std_msgs/msg/String"


@dataclass
class EpisodeInfo:
    """Per-episode metadata, stored in the bag's metadata.yaml (``custom_data.episode``)."""

    name: str
    task: str = ""
    seed: int | None = None
    success: bool | None = None
    reason: str = ""
    robot: dict[str, Any] = field(default_factory=dict)
    cameras: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)


class EpisodeRecorder:
    """Owns the bag of the current episode. Thread-safe use is the caller's job (one executor).

    ``serialize_event(event) -> bytes`` turns an event into a CDR ``std_msgs/String``;
    ``publish_event(event)`` tells the rest of the graph (both supplied by the node).
    """

    def __init__(self, output_dir: Path, serialize_event: Callable[[dict], bytes],
                 publish_event: Callable[[dict], None] = lambda event: None, *, chunk_compression: str = "zstd",
                 chunk_period_s: float = 1.0, stop_delay_s: float = 1.0, robot: dict[str, Any] | None = None):
        self.output_dir = Path(output_dir)
        self._serialize_event = serialize_event
        self._publish_event = publish_event
        self._chunk_compression, self._chunk_period_s = chunk_compression, chunk_period_s
        self.stop_delay_s = stop_delay_s
        self.robot = robot or {}
        self.task = ""
        self._task_message: bytes | None = None
        self.cameras: dict[str, Any] = {}  # latest camera configuration seen, per camera
        self.bag: McapBagWriter | None = None
        self.info: EpisodeInfo | None = None
        self._stop_at: float | None = None
        self.finished: list[tuple[Path, EpisodeInfo]] = []  # closed (kept) episodes, oldest first

    @property
    def recording(self) -> bool:
        return self.bag is not None

    # ------------------------------------------------------------------ events

    def handle_event(self, event: dict[str, Any], now: float | None = None) -> None:
        """An event from anyone (sim world, operator, keyboard): act on it and log it in the bag."""
        now = time.monotonic() if now is None else now
        kind = event["event"]
        if kind == "start":
            if self.recording:  # a new episode starts: the old one ended without a verdict
                self._close(make_event("stop", "recorder", "a new episode started"))
            self._open(event)
        elif not self.recording:
            log.warning("episode event '%s' ignored: not recording (start an episode first)", kind)
            return
        elif kind in ("success", "failure"):
            self._write_event(event)
            self.info.success, self.info.reason = kind == "success", event.get("reason", "")
            self._stop_at = now + self.stop_delay_s
        elif kind == "stop":
            self._close(event)
        elif kind == "discard":
            self._close(event, discard=True)

    def operator(self, kind: str, reason: str = "operator") -> dict[str, Any]:
        """An operator's command (service or key); returns the event, also published to the graph."""
        event = make_event(kind, "recorder", reason, task=self.task)
        self.handle_event(event)
        self._publish_event(event)
        return event

    def tick(self, now: float | None = None) -> None:
        """Call periodically: writes a due chunk even when no message comes, and closes the
        episode once ``stop_delay_s`` has passed after its verdict."""
        now = time.monotonic() if now is None else now
        if self._stop_at is not None and now >= self._stop_at:
            self._close(make_event("stop", "recorder", "verdict recorded"))
        elif self.bag is not None:
            self.bag.flush_if_due()

    # ------------------------------------------------------------------ messages

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        if self.bag is not None:
            self.bag.write(topic, msgtype, stamp_ns, data)

    def note_task(self, text: str, message: bytes) -> None:
        """The latest ``/task`` (a CDR std_msgs/String): recorded now, and again at each episode's start,
        because it is latched and usually arrives once, before the episode starts."""
        self.task, self._task_message = text, message
        self.write(TASK_TOPIC, TASK_MSGTYPE, time.time_ns(), message)

    def note_camera(self, name: str, width: int, height: int, k: np.ndarray | list[float]) -> None:
        self.cameras[name] = {"width": int(width), "height": int(height), "k": [float(v) for v in np.ravel(k)]}

    # ------------------------------------------------------------------ bag lifecycle

    def _open(self, event: dict[str, Any]) -> None:
        self.task = event.get("task") or self.task
        stamp = time.strftime("%Y%m%d-%H%M%S")
        seed = event.get("seed")
        name = f"episode_{stamp}" + (f"_seed{seed}" if seed is not None else "")
        path = self.output_dir / name
        suffix = 1
        while path.exists():
            path = self.output_dir / f"{name}_{suffix}"
            suffix += 1
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.bag = McapBagWriter(path, self._chunk_compression, self._chunk_period_s, frozenset({TASK_TOPIC, EVENTS_TOPIC}))
        self.info = EpisodeInfo(path.name, self.task, seed, robot={**self.robot, **event.get("robot", {})})
        self._stop_at = None
        self._write_event(event)
        if self._task_message is not None:
            self.bag.write(TASK_TOPIC, TASK_MSGTYPE, time.time_ns(), self._task_message)
        log.info("recording episode %s (%s)", path, self.task or "no task yet")

    def _close(self, event: dict[str, Any], discard: bool = False) -> Path:
        self._write_event(event)
        bag, info = self.bag, self.info
        self.bag, self.info, self._stop_at = None, None, None
        info.cameras = dict(self.cameras)
        info.task = info.task or self.task
        bag.set_metadata("episode", info.to_json())
        path = bag.close()
        if discard:
            target = self.output_dir / DISCARDED_FOLDER / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            path = Path(shutil.move(str(path), target))
            log.info("episode discarded, bag kept in %s", path)
        else:
            self.finished.append((path, info))
            log.info("episode saved: %s (success=%s)", path, info.success)
        return path

    def _write_event(self, event: dict[str, Any]) -> None:
        self.bag.write(EVENTS_TOPIC, EVENT_MSGTYPE, time.time_ns(), self._serialize_event(event))

    def close(self) -> None:
        """Shutdown: an open episode is closed (kept, verdict as known so far)."""
        if self.recording:
            self._close(make_event("stop", "recorder", "recorder shut down"))
