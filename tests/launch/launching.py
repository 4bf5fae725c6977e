"""Run the real `ros2 launch` / `ros2` CLI the way a user does, and clean up after it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.processes import REPO, robot_ip_for_this_process

ROS2 = Path(sys.prefix) / "bin" / "ros2"


def environment(home: Path, log_dir: Path) -> dict[str, str]:
    return dict(
        os.environ,
        AMENT_PREFIX_PATH=sys.prefix,  # the venv is the install prefix (make install)
        PYTHONPATH=str(REPO / "src"),  # nodes run this checkout's code
        VIDEO_POLICY_ROS_HOME=str(home),
        ROS_LOG_DIR=str(log_dir),
        MUJOCO_GL="egl",
        PYTHONUNBUFFERED="1",
    )


def ros2(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = env or environment(Path("/nonexistent"), Path("/tmp"))
    return subprocess.run([str(ROS2), *args], env=env, capture_output=True, text=True, timeout=timeout, cwd="/")


class Launch:
    """``ros2 launch video_policy_ros franka.launch.py ARGS`` from a directory outside the checkout,
    in a process group of its own (what a terminal's Ctrl-C reaches)."""

    def __init__(self, tmp_path: Path, *arguments: str):
        self.home, self.cwd, self.log = tmp_path / "home", tmp_path / "cwd", tmp_path / "launch.log"
        self.cwd.mkdir(parents=True, exist_ok=True)
        if not any(a.startswith("robot_ip:=") for a in arguments):  # parallel test runs never share a robot
            arguments = (*arguments, f"robot_ip:={robot_ip_for_this_process()}")
        self.arguments = arguments
        self.env = environment(self.home, tmp_path / "ros_log")
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Launch":
        self.process = subprocess.Popen(
            [str(ROS2), "launch", "video_policy_ros", "franka.launch.py", *self.arguments],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=self.cwd, start_new_session=True,
        )
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever a failed test left behind
        except ProcessLookupError:
            pass
        print(f"----- ros2 launch {' '.join(self.arguments)} -----\n{self.output[-6000:]}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"launch still running after {timeout} s:\n{self.output[-3000:]}") from None

    def wait_for_output(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no '{text}' in the launch output:\n{self.output[-3000:]}")
            time.sleep(0.2)

    def wait_for_topic(self, topic: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while "Publisher count: 0" in (info := self.ros2("topic", "info", topic, "--no-daemon").stdout) or not info:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"nobody publishes {topic}:\n{self.output[-3000:]}")
            time.sleep(1.0)

    def kill_node(self, name: str) -> None:
        pid = int(re.search(rf"\[{name}-\d+\]: process started with pid \[(\d+)\]", self.output).group(1))
        os.kill(pid, signal.SIGKILL)

    def ros2(self, *args: str) -> subprocess.CompletedProcess:
        return ros2(*args, env=self.env)

    def ros2_until_ok(self, *args: str, ok=lambda result: result.returncode == 0, tries: int = 5):
        """A ros2 CLI call without the daemon discovers the graph anew each time; on a loaded machine the
        node can be missed ("Node not found"): ask again, as a user would."""
        for _ in range(tries):
            result = self.ros2(*args)
            if ok(result):
                return result
            time.sleep(1.0)
        return result

    def assert_no_process_left(self) -> None:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return
        raise AssertionError("processes of the launch are still running after it ended (orphans)")
