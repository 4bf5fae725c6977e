"""Read a recorded bag back, including one cut short by a crash.

A bag closed normally (metadata.yaml + an MCAP summary) is read with ``rosbags``. A bag
whose recorder was killed has neither: its ``.mcap`` is then read record by record
with the ``mcap`` library's stream reader up to the last complete chunk, and the
result says that it is truncated. Messages are decoded with rosbags' ROS 2 type store.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml
from rosbags.serde import SerdeError

from video_policy_ros.data.bag_writer import TYPESTORE
from video_policy_ros.errors import StackError

log = logging.getLogger(__name__)


class BagReadError(StackError):
    """A bag cannot be read at all (not a bag, no messages, unreadable file)."""


@dataclass
class RecordedBag:
    """Messages per topic, in receive order: ``topics[name] = [(receive_ns, decoded message), ...]``."""

    path: Path
    topics: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    msgtypes: dict[str, str] = field(default_factory=dict)
    episode: dict[str, Any] | None = None  # the recorder's per-episode metadata, when the bag was closed
    truncated: bool = False
    warnings: list[str] = field(default_factory=list)
    undecodable: dict[str, int] = field(default_factory=dict)  # topic → messages skipped as corrupt

    def messages(self, topic: str) -> list[Any]:
        return [msg for _, msg in self.topics.get(topic, [])]


def _mcap_file(path: Path) -> Path:
    if path.is_file():
        return path
    files = sorted(path.glob("*.mcap"))
    if not files:
        raise BagReadError(f"{path}: no .mcap file (record bags with the recorder, MCAP storage)")
    if len(files) > 1:
        raise BagReadError(f"{path}: {len(files)} .mcap files; split bags are not supported, convert each file")
    return files[0]


def _custom_episode(metadata_yaml: Path) -> dict[str, Any] | None:
    info = yaml.safe_load(metadata_yaml.read_text()).get("rosbag2_bagfile_information", {})
    text = (info.get("custom_data") or {}).get("episode")
    return json.loads(text) if text else None


def read_bag(path: str | Path) -> RecordedBag:
    path = Path(path)
    if not path.exists():
        raise BagReadError(f"bag not found: {path}")
    bag = RecordedBag(path)
    metadata = path / "metadata.yaml"
    if path.is_dir() and metadata.is_file():
        _read_closed(bag, path)
        try:
            bag.episode = _custom_episode(metadata)
        except (yaml.YAMLError, json.JSONDecodeError, AttributeError) as exc:
            bag.warnings.append(f"metadata.yaml: episode metadata unreadable ({str(exc).splitlines()[0]}); "
                                "task and verdict are taken from the recorded topics")
    else:
        _read_stream(bag, _mcap_file(path))
    bag.warnings += [f"{topic}: {count} message(s) could not be decoded and were skipped"
                     for topic, count in sorted(bag.undecodable.items())]
    if not bag.topics:
        raise BagReadError(f"{path}: no messages" + (" (the recorder stopped before its first chunk)" if bag.truncated else ""))
    return bag


def deserialize(data: bytes, msgtype: str) -> Any:
    """CDR → message. rclpy (Fast CDR) pads a message whose last field is an empty array of
    8-byte values (e.g. a JointState without efforts) with 4 more bytes than rosbags accepts:
    such a message is read without its padding."""
    try:
        return TYPESTORE.deserialize_cdr(data, msgtype)
    except SerdeError:
        return TYPESTORE.deserialize_cdr(data[:-4], msgtype)


def _add(bag: RecordedBag, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
    bag.msgtypes.setdefault(topic, msgtype)
    try:
        message = deserialize(data, msgtype)
    except (SerdeError, ValueError, IndexError) as exc:  # a corrupt message: skipped and counted
        bag.undecodable[topic] = bag.undecodable.get(topic, 0) + 1
        log.debug("%s: undecodable %s message: %s", topic, msgtype, exc)
        return
    bag.topics.setdefault(topic, []).append((stamp_ns, message))


def _read_closed(bag: RecordedBag, path: Path) -> None:
    from rosbags.highlevel import AnyReader

    try:
        with AnyReader([path], default_typestore=TYPESTORE) as reader:
            for connection, stamp_ns, data in reader.messages():
                _add(bag, connection.topic, connection.msgtype, stamp_ns, data)
    except Exception as exc:  # rosbags raises several unrelated types for damaged files
        log.info("rosbags cannot read %s (%s): reading the MCAP records directly", path, exc)
        bag.topics.clear()
        _read_stream(bag, _mcap_file(path))


def _records(mcap_path: Path) -> Iterator[Any]:
    from mcap.stream_reader import StreamReader

    with mcap_path.open("rb") as stream:
        yield from StreamReader(stream).records


def _read_stream(bag: RecordedBag, mcap_path: Path) -> None:
    from mcap.records import Channel, DataEnd, Footer, Message, Schema

    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}
    complete = False
    try:
        for record in _records(mcap_path):
            if isinstance(record, Schema):
                schemas[record.id] = record.name
            elif isinstance(record, Channel):
                channels[record.id] = (record.topic, schemas[record.schema_id])
            elif isinstance(record, Message):
                topic, msgtype = channels[record.channel_id]
                _add(bag, topic, msgtype, record.log_time, record.data)
            elif isinstance(record, (DataEnd, Footer)):
                complete = True
    except Exception as exc:  # the mcap library signals a cut-off file in several ways
        if not bag.topics and not schemas:
            raise BagReadError(f"{mcap_path}: not a readable MCAP file: {exc}") from None
        complete = False
    if not complete:
        bag.truncated = True
        count = sum(len(v) for v in bag.topics.values())
        bag.warnings.append(
            f"{mcap_path.name} is truncated (recorder killed or disk full?): read {count} messages up to its "
            "last complete chunk"
        )
