"""Recording size: MB per episode-minute for each image encoding and chunk compression, side by side.

    PYTHONPATH=src python bench/bench_recording_size.py [--episodes 2] [--robot-ip 127.0.0.91]

Records scripted-expert episodes once through the real graph (``video-policy collect``,
raw images), then writes the very same messages again with every recorder setting,
so the sizes compare identical content. Needs the sim world (MUJOCO_GL=egl).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from video_policy_ros.data.bag_reader import read_bag
from video_policy_ros.data.bag_writer import TYPESTORE, McapBagWriter
from video_policy_ros.data.converter import decode_image
from video_policy_ros.data.image_codec import compressed_format, encode_rgb

SETTINGS = [("raw", "none"), ("raw", "zstd"), ("png", "zstd"), ("jpeg", "none"), ("jpeg", "zstd")]
JPEG_QUALITY = 90  # the recorder's default


def reencode(bag, target: Path, encoding: str, compression: str) -> int:
    """Write ``bag``'s messages with another image encoding / chunk compression; returns the .mcap size."""
    CompressedImage = TYPESTORE.types["sensor_msgs/msg/CompressedImage"]
    writer = McapBagWriter(target, compression)
    messages = sorted(((ns, topic, msg) for topic, entries in bag.topics.items() for ns, msg in entries),
                      key=lambda m: (m[0], m[1]))  # every topic, in receive order
    for ns, topic, msg in messages:
        msgtype = bag.msgtypes[topic]
        if topic.endswith("/image_raw") and encoding != "raw":
            data = np.frombuffer(encode_rgb(decode_image(msg, topic), encoding, JPEG_QUALITY), np.uint8)
            msg = CompressedImage(header=msg.header, format=compressed_format(msg.encoding, encoding), data=data)
            topic, msgtype = f"{topic}/compressed", "sensor_msgs/msg/CompressedImage"
        writer.write(topic, msgtype, ns, bytes(TYPESTORE.serialize_cdr(msg, msgtype)))
    writer.close()
    return writer.mcap_path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--robot-ip", default="127.0.0.91")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw"
        env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
        subprocess.run([sys.executable, "-m", "video_policy_ros.cli", "collect", "--episodes", str(args.episodes),
                        "--out", str(raw), "--image-encoding", "raw", "--robot-ip", args.robot_ip], check=True, env=env)
        bags = [read_bag(p) for p in sorted(raw.iterdir())]
        minutes = sum((max(ns for ns, _ in b.topics["/joint_states"]) - min(ns for ns, _ in b.topics["/joint_states"]))
                      for b in bags) / 1e9 / 60
        cams = sorted({t for b in bags for t in b.topics if t.endswith("/image_raw")})
        rates = ", ".join(f"{t.split('/')[2]} {sum(len(b.topics[t]) for b in bags) / (minutes * 60):.1f} fps" for t in cams)
        print(f"\n{len(bags)} episode(s), {minutes * 60:.1f} s in all, images recorded at {rates}; MB per episode-minute:")
        baseline = None
        for encoding, compression in SETTINGS:
            start = time.perf_counter()
            size = sum(reencode(b, Path(tmp) / f"{encoding}-{compression}-{i}", encoding, compression)
                       for i, b in enumerate(bags))
            rate = size / 1e6 / minutes
            baseline = baseline or rate
            label = f"jpeg q{JPEG_QUALITY}" if encoding == "jpeg" else encoding
            print(f"  images {label:8s} chunks {compression:4s}: {rate:8.1f} MB/min "
                  f"({baseline / rate:5.1f}x smaller than raw/none; written in {time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
