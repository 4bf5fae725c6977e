"""One rosbag2 bag (MCAP storage) written through ``rosbags``, crash-safe up to its last chunk.

Messages arrive already CDR-serialised (rclpy raw subscriptions, or ``serialize_message``),
so nothing is decoded on the recording path. rosbags collects messages into an MCAP
chunk and writes the chunk when it passes 1 MiB; two things make a ``kill -9`` lose
at most the open chunk, a bounded amount of data:

- a chunk is also closed every ``chunk_period_s``, so slow topics reach the disk too;
- the file is flushed after every chunk, so nothing finished waits in Python's buffer.

After such a kill the bag has no ``metadata.yaml`` and no MCAP summary;
:mod:`video_policy_ros.data.bag_reader` reads it up to its last complete chunk.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal

from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.enums import CompressionFormat, CompressionMode
from rosbags.typesys import Stores, get_typestore

from video_policy_ros.errors import StackError

TYPESTORE = get_typestore(Stores.ROS2_KILTED)
_NO_TIME = QosTime(0, 0)
# Offered QoS stored for latched topics (/task, /episode/events), so `ros2 bag play` republishes
# them latched and a node that starts during playback still gets the instruction.
LATCHED_QOS = Qos(QosHistory.KEEP_LAST, 1, QosReliability.RELIABLE, QosDurability.TRANSIENT_LOCAL, _NO_TIME,
                  _NO_TIME, QosLiveliness.AUTOMATIC, _NO_TIME, False)


class BagWriteError(StackError):
    """A bag cannot be created or written (folder exists, disk full, unknown message type)."""


class McapBagWriter:
    """``write(topic, msgtype, stamp_ns, cdr_bytes)`` into ``<path>/<path.name>.mcap``."""

    def __init__(self, path: Path, chunk_compression: Literal["none", "zstd"] = "zstd", chunk_period_s: float = 1.0,
                 latched_topics: frozenset[str] = frozenset()):
        self.path = Path(path)
        self.latched_topics = latched_topics
        self.chunk_period_s = chunk_period_s
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        if chunk_compression == "zstd":
            # STORAGE mode = zstd inside the MCAP chunks: the file stays one plain .mcap that
            # `ros2 bag`, Foxglove and the mcap library open directly.
            self._writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        try:
            self._writer.open()
        except Exception as exc:  # rosbags raises WriterError for an existing folder
            raise BagWriteError(f"cannot create bag {self.path}: {exc} (choose a new output folder)") from None
        self._connections: dict[str, object] = {}
        self._last_chunk_time = time.monotonic()
        self.message_count = 0

    @property
    def mcap_path(self) -> Path:
        return self.path / f"{self.path.name}.mcap"

    def set_metadata(self, key: str, value: str) -> None:
        """Stored in metadata.yaml's ``custom_data`` when the bag is closed (``ros2 bag info`` shows it)."""
        self._writer.set_custom_data(key, value)

    def write(self, topic: str, msgtype: str, stamp_ns: int, data: bytes) -> None:
        connection = self._connections.get(topic)
        if connection is None:
            if msgtype not in TYPESTORE.types:
                raise BagWriteError(f"{topic}: message type {msgtype} is not a standard ROS 2 type rosbags knows")
            qos = [LATCHED_QOS] if topic in self.latched_topics else []
            connection = self._writer.add_connection(topic, msgtype, typestore=TYPESTORE, offered_qos_profiles=qos)
            self._connections[topic] = connection
        storage = self._writer.storage
        chunks_before = len(storage.chunks)
        self._writer.write(connection, stamp_ns, data)
        self.message_count += 1
        if len(storage.chunks) != chunks_before:  # rosbags closed a full chunk
            self._flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Write the open chunk if it is older than ``chunk_period_s`` (also called when no message comes)."""
        storage = self._writer.storage
        if storage.chunk.bio.tell() and time.monotonic() - self._last_chunk_time >= self.chunk_period_s:
            storage.close_chunk()
            self._flush()

    def _flush(self) -> None:
        self._writer.storage.bio.flush()
        self._last_chunk_time = time.monotonic()

    def close(self) -> Path:
        """Finish the MCAP summary and write metadata.yaml; returns the bag folder."""
        self._writer.close()
        return self.path
