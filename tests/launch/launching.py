"""Run the real `ros2 launch` / `ros2` CLI the way a user does, and clean up after it."""

from __future__ import annotations

import os
import re
from signal import SIGKILL  # the class's own signal() method hides the module in its body
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.repo import REPO
from video_policy_ros.preflight.processes import robot_ip_for_this_process

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


def exit_status(process: subprocess.Popen) -> int | None:
    """``process``'s exit status (negative: killed by that signal), or None while it runs, *without*
    reaping it: until it is reaped its pid, and so its process group's id, cannot be reused, so
    signalling the group can never reach a process that happens to get the same number."""
    if process.returncode is not None:
        return process.returncode
    info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None or info.si_pid == 0:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def _as_from_a_terminal() -> None:
    """In the child, before exec: SIGINT and SIGTERM unblocked and at their defaults, as a shell starts a command."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Launch:
    """``ros2 launch video_policy_ros franka.launch.py ARGS`` from a directory outside the checkout,
    in a process group of its own (what a terminal's Ctrl-C reaches).

    The launch process is reaped only in ``__exit__``, after whatever is left of its group has
    been killed: every signal goes to this launch's own processes, never to a reused pid."""

    def __init__(self, tmp_path: Path, *arguments: str, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None,
                 name: str = "launch"):
        """``prefix``: what the command runs under (e.g. ``ip netns exec NS``); ``env``: added to its environment."""
        self.home, self.cwd, self.log = tmp_path / "home", tmp_path / "cwd", tmp_path / f"{name}.log"
        self.cwd.mkdir(parents=True, exist_ok=True)
        if not any(a.startswith("robot_ip:=") for a in arguments):  # parallel test runs never share a robot
            arguments = (*arguments, f"robot_ip:={robot_ip_for_this_process()}")
        self.arguments, self.prefix = arguments, prefix
        self.env = {**environment(self.home, tmp_path / "ros_log"), **(env or {})}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Launch":
        # What this process passes on to a child: in fresh-clone CI runs `ros2 launch` ignored the Ctrl-C that
        # reached its nodes (no "user interrupted" line at all), which an inherited blocked or ignored SIGINT
        # would explain; the report shows what was inherited, and the child starts as from a terminal.
        self.inherited = (f"SIGINT {signal.getsignal(signal.SIGINT)}, blocked {sorted(signal.pthread_sigmask(signal.SIG_BLOCK, []))}"
                          f" in thread {threading.current_thread().name}")
        self.process = subprocess.Popen(
            [*self.prefix, str(ROS2), "launch", "video_policy_ros", "franka.launch.py", *self.arguments],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=self.env, cwd=self.cwd, start_new_session=True, preexec_fn=_as_from_a_terminal,
        )
        return self

    def __exit__(self, *exc) -> None:
        if exit_status(self.process) is None:
            self.signal(signal.SIGINT)
            try:
                self.wait(timeout=15)
            except AssertionError:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever a failed test left behind
        except ProcessLookupError:
            pass
        self.process.wait()  # reaped only now
        print(f"----- ros2 launch {' '.join(self.arguments)} (this process had {self.inherited}) -----\n"
              f"{self.output[-6000:]}")

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        os.killpg(self.process.pid, sig)

    def wait(self, timeout: float) -> int:
        """The launch's exit status, once it has exited (it stays unreaped, see ``exit_status``)."""
        deadline = time.monotonic() + timeout
        while (status := exit_status(self.process)) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"launch still running after {timeout} s:\n{self.output[-3000:]}")
            time.sleep(0.05)
        return status

    def wait_for_output(self, pattern: str, timeout: float) -> None:
        """Until ``pattern`` (a regular expression) appears in the launch's output."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            if exit_status(self.process) is not None or time.monotonic() > deadline:
                raise AssertionError(f"no '{pattern}' in the launch output:\n{self.output[-3000:]}")
            time.sleep(0.2)

    def wait_for_topic(self, topic: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while "Publisher count: 0" in (info := self.ros2("topic", "info", topic, "--no-daemon").stdout) or not info:
            if exit_status(self.process) is not None or time.monotonic() > deadline:
                raise AssertionError(f"nobody publishes {topic}:\n{self.output[-3000:]}")
            time.sleep(1.0)

    def node_pids(self) -> dict[str, int]:
        """Each node's pid, as launch reported it."""
        return {name: int(pid) for name, pid in re.findall(r"\[(\w+)-\d+\]: process started with pid \[(\d+)\]", self.output)}

    def kill_node(self, name: str, sig: int = SIGKILL) -> None:
        """``sig`` to the node's process alone, through a pidfd opened and checked to be a member of this
        launch's group first (the pid in the log might have been reused if the node had died in between)."""
        pid = self.node_pids()[name]
        pidfd = os.pidfd_open(pid)
        try:
            if os.getpgid(pid) != self.process.pid:
                raise AssertionError(f"pid {pid} of node {name} is no longer a process of this launch")
            signal.pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)

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

    def signal_launch_alone(self, sig: int) -> None:
        """``sig`` to the ``ros2 launch`` process only (unreaped, so its pid is still its own), as a
        supervisor or ``kill PID`` does."""
        os.kill(self.process.pid, sig)

    def group_members(self) -> list[int]:
        """The launch's processes other than itself, by process group (nodes keep it after their parent died)."""
        return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc"))) if pid != self.process.pid
                and _process_group(pid) == self.process.pid]

    def assert_no_process_left(self, within: float = 0.0) -> None:
        """After the launch exited (unreaped, so its group id is still its own): no member of its group is
        left, now or ``within`` seconds."""
        assert exit_status(self.process) is not None, "the launch is still running"
        deadline = time.monotonic() + within
        while (members := self.group_members()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not members, f"processes of the launch are still running after it ended (orphans): {members}"


def _process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
