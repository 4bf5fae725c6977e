"""Start and stop node processes the way launch does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def robot_ip_for_this_process() -> str:
    """A loopback address of this test process's own, so parallel runs never share a simulated FR3."""
    return f"127.0.{10 + os.getpid() % 200}.{1 + os.getpid() % 250}"


def node_process(node: str, params: dict[str, object], log_path: Path) -> subprocess.Popen:
    """Start a node executable as launch would (its own process, ROS parameters on the command line)."""
    args = [sys.executable, str(REPO / "scripts" / node), "--ros-args"]
    for key, value in params.items():
        args += ["-p", f"{key}:={value}"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), PYTHONUNBUFFERED="1")
    return subprocess.Popen(args, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(2)  # SIGINT: the nodes' normal shutdown path
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def print_logs(folder: Path, names: tuple[str, ...], tail_chars: int = 3000) -> None:
    """The end of each process's log, for the test report."""
    for name in names:
        log = folder / f"{name}.log"
        print(f"----- {name}.log -----\n" + (log.read_text()[-tail_chars:] if log.exists() else "(no log)"))
