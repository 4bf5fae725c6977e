"""Start and stop node processes the way launch does, with this very copy of the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import video_policy_ros

# The folder that holds this package (src/ in a checkout, site-packages when installed): the children
# run the same code as the process that starts them.
PACKAGE_ROOT = Path(video_policy_ros.__file__).resolve().parents[1]


def robot_ip_for_this_process() -> str:
    """A loopback address of this process's own, so parallel runs never share a simulated FR3."""
    return f"127.0.{10 + os.getpid() % 200}.{1 + os.getpid() % 250}"


def child_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1")


def start_module(module: str, args: list[str], log_path: Path) -> subprocess.Popen:
    """``python -m module args...`` with stdout and stderr in ``log_path``."""
    return subprocess.Popen([sys.executable, "-m", module, *args], stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, env=child_env())


def node_process(node: str, params: dict[str, object], log_path: Path) -> subprocess.Popen:
    """Start a node as its executable does (its own process, ROS parameters on the command line)."""
    args = [node, "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    return start_module("video_policy_ros.nodes", args, log_path)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(2)  # SIGINT: the nodes' normal shutdown path
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def log_tails(folder: Path, names: tuple[str, ...], tail_chars: int = 3000) -> str:
    """The end of each process's log, for a report."""
    return "\n".join(f"----- {name}.log -----\n" + ((folder / f"{name}.log").read_text()[-tail_chars:]
                                                   if (folder / f"{name}.log").exists() else "(no log)")
                     for name in names)
