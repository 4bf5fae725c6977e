"""``video-policy discovery-server``: Fast DDS's discovery server, for graphs split across hosts without multicast.

The ROS 2 wheels ship its binary, but neither the library path it needs nor the Python its ``fastdds discovery``
front end wants (psutil); this command sets the path and runs the binary in the foreground. Every node then finds the others through it: ``discovery_server:=IP:PORT``
on each host's launch (ROS_DISCOVERY_SERVER). See README "Across machines".
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from video_policy_ros.errors import StackError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default="0.0.0.0", help="address to listen on (this host's, e.g. 192.0.2.1)")
    parser.add_argument("--port", type=int, default=11811, help="UDP port (default 11811)")


def run(args: argparse.Namespace) -> int:
    prefix = Path(sys.prefix)
    tool = prefix / "bin" / "fast-discovery-server"
    if not tool.exists():
        raise StackError(f"{tool} not found: the ROS 2 wheels (ros-fastdds) are not installed in {prefix}; run make install")
    libraries = [prefix / "lib", *sorted((prefix / "lib").glob("python3*/site-packages/ros_fastdds.libs"))]
    env = dict(os.environ, LD_LIBRARY_PATH=os.pathsep.join(
        [*map(str, libraries), *filter(None, [os.environ.get("LD_LIBRARY_PATH")])]))
    print(f"discovery server on {args.address}:{args.port}; on each host: ros2 launch ... "
          f"discovery_server:=<this host's address>:{args.port}", flush=True)
    # 42: the binary's "server" command, as `fastdds discovery` passes it.
    os.execve(str(tool), [str(tool), "42", "-i", "0", "-l", args.address, "-p", str(args.port)], env)
