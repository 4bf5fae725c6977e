"""`ros2 launch video_policy_ros franka.launch.py` as a user runs it: the real launch and ros2 CLI
(from ../shared/ros2-launch, installed into the venv by `make install`), started from a directory
outside the checkout, stopped with Ctrl-C (SIGINT to the whole process group, as a terminal does).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import time
import urllib.request

import pytest

from video_policy_ros.preflight.processes import robot_ip_for_this_process
from tests.launch.launching import REPO, Launch, ros2
from tests.ports import free_port

pytestmark = pytest.mark.integration
PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def contract_topics(cameras: list[str]) -> dict[tuple[str, str], bool]:
    """README's topic contract: (topic, type) → present in the default sim graph, ``<name>`` expanded per camera."""
    rows = {}
    for line in (REPO / "README.md").read_text().splitlines():
        match = re.match(r"\|\s*`(/[^`]+)`\s*\|\s*(\w+)/(\w+).*\|\s*([^|]+?)\s*\|$", line)
        if not match or match.group(2).endswith("_srvs"):  # services are no topics
            continue
        topic, package, message, present = match.groups()
        for name in cameras if "<name>" in topic else [None]:
            rows[(topic.replace("<name>", name) if name else topic, f"{package}/msg/{message}")] = present == "always" or present.startswith("in sim")
    return rows


def test_launch_arguments_cover_the_knobs_users_turn():
    out = ros2("launch", "video_policy_ros", "franka.launch.py", "--show-args").stdout
    for argument in ("use_sim", "robot_ip", "policy", "model", "cameras", "num_steps", "guidance", "rviz", "view",
                     "view_port", "seed", "exit_on_done", "output_dir", "log_level", "config_dir", "role", "record",
                     "image_transport", "static_peers", "discovery_server"):
        assert f"'{argument}'" in out, f"launch argument {argument} missing:\n{out}"


def test_default_sim_launch_succeeds_and_prints_where_its_video_went(tmp_path):
    with Launch(tmp_path, "exit_on_done:=true", "output_dir:=videos") as launch:
        code = launch.wait(timeout=150)
    out = launch.output
    assert code == 0, out[-4000:]
    assert "SUCCESS: touch the" in out
    video = re.search(r"video of the front camera: (\S+\.mp4)", out).group(1)
    assert video.startswith(str(launch.home / "videos")), f"{video} is not under the data home"
    assert (launch.home / "videos").is_dir() and list((launch.home / "videos").glob("*.mp4"))
    assert "Traceback" not in out
    launch.assert_no_process_left()


def test_running_graph_matches_the_contract_refuses_parameter_changes_and_stops_on_two_ctrl_c(tmp_path):
    with Launch(tmp_path) as launch:
        launch.wait_for_output("task: touch the", timeout=60)
        launch.wait_for_topic("/policy/action_chunk", timeout=60)
        contract = contract_topics(["front", "wrist"])
        always = {row for row, is_always in contract.items() if is_always}

        def topics(result) -> set[tuple[str, ...]]:
            listed = {tuple(line.replace("[", "").replace("]", "").split()) for line in result.stdout.splitlines() if line.strip()}
            return listed - {("/parameter_events", "rcl_interfaces/msg/ParameterEvent"), ("/rosout", "rcl_interfaces/msg/Log")}

        # Without the daemon each call discovers the graph anew; under CPU load 3 s can miss a node's topics.
        listed = topics(launch.ros2_until_ok("topic", "list", "-t", "--no-daemon", "--spin-time", "3",
                                             ok=lambda result: topics(result) >= always))
        assert listed == always, f"not in the contract: {sorted(listed - always)}; missing: {sorted(always - listed)}"

        described = launch.ros2_until_ok("param", "describe", "/controller", "robot_ip", "--no-daemon").stdout
        assert "Read only: true" in described and "Description:" in described, described
        refused = launch.ros2_until_ok("param", "set", "/controller", "robot_ip", "127.0.0.99", "--no-daemon",
                                       ok=lambda r: "Node not found" not in r.stderr)
        assert "read-only" in (refused.stdout + refused.stderr), refused.stdout + refused.stderr
        assert launch.ros2_until_ok("param", "get", "/controller", "robot_ip", "--no-daemon").stdout.strip().endswith(robot_ip_for_this_process())

        started = time.monotonic()
        launch.signal(signal.SIGINT)
        time.sleep(0.3)
        launch.signal(signal.SIGINT)  # impatient user
        code = launch.wait(timeout=30)
        stopped_after = time.monotonic() - started
    out = launch.output
    print(f"two SIGINTs: launch exited after {stopped_after:.2f} s with code {code}")
    assert code == 0, out[-3000:]
    assert stopped_after < 5.0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    for node in ("sim_world", "controller", "inference"):
        assert re.search(rf"\[{node}-\d+\]: process has finished cleanly", out), f"{node} did not exit cleanly"
    launch.assert_no_process_left()


def test_a_ctrl_c_that_ends_a_node_before_launch_has_handled_it_still_exits_0(tmp_path):
    """A terminal's Ctrl-C reaches every process at once; under CPU load a node can be gone before launch
    has handled its own SIGINT (a CI run beside stress-ng: "required node 'inference' died (exit code 0)",
    launch exit 1). Here the node gets the SIGINT first, on purpose, and launch 0.2 s after it exited."""
    with Launch(tmp_path) as launch:
        launch.wait_for_topic("/policy/action_chunk", timeout=60)
        launch.kill_node("inference", signal.SIGINT)
        launch.wait_for_output(r"\[inference-\d+\]: process has finished cleanly", timeout=15)
        time.sleep(0.2)
        launch.signal(signal.SIGINT)
        code = launch.wait(timeout=30)
    out = launch.output
    assert code == 0, out[-3000:]
    assert "died" not in out and "Traceback" not in out, out[-3000:]
    launch.assert_no_process_left()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_nodes_stop_cleanly_when_the_launch_itself_is_killed(tmp_path, sig):
    """``ros2 launch`` ends on SIGTERM or SIGKILL without stopping its nodes; they must not run on without
    it. This process adopts them (a subreaper) to read how each one ended."""
    with adopting_orphans(), Launch(tmp_path) as launch:
        launch.wait_for_topic("/policy/action_chunk", timeout=60)
        nodes = launch.node_pids()
        launch.signal_launch_alone(sig)
        assert launch.wait(timeout=10) == -sig
        exits = {name: wait_for_exit(pid, timeout=15) for name, pid in nodes.items()}
        launch.assert_no_process_left()
    assert exits == {name: 0 for name in nodes}, exits


@contextlib.contextmanager
def adopting_orphans():
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def wait_for_exit(pid: int, timeout: float) -> int | str:
    """The exit status of an adopted process (negative: killed by that signal)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    return f"still running after {timeout} s"


def test_view_true_serves_the_browser_view_whose_exit_stops_nothing(tmp_path):
    """The page itself is checked in a browser by tests/view; here: served, and optional (the arm does not
    stop because the operator's view went away), and stopped with the launch."""
    port = free_port()
    with Launch(tmp_path, "view:=true", f"view_port:={port}") as launch:
        served = rf"view: (http://127\.0\.0\.1:{port}/\S+)"
        launch.wait_for_output(served, timeout=90)
        address = re.search(served, launch.output).group(1)
        with urllib.request.urlopen(address, timeout=10) as page:
            assert page.status == 200 and b"re_viewer" in page.read()
        launch.kill_node("view")
        launch.wait_for_output(r"\[view-\d+\]: process has died", timeout=15)
        launch.wait_for_topic("/policy/action_chunk", timeout=30)  # the graph goes on
        launch.signal(signal.SIGINT)
        code = launch.wait(timeout=30)
    out = launch.output
    assert code == 0 and "required node" not in out and "Traceback" not in out, out[-3000:]
    launch.assert_no_process_left()


def test_a_required_node_that_dies_ends_the_launch_and_is_named(tmp_path):
    with Launch(tmp_path) as launch:
        launch.wait_for_topic("/ee_pose", timeout=60)
        launch.kill_node("controller")
        code = launch.wait(timeout=30)
    out = launch.output
    assert code != 0
    assert "required node 'controller' died (exit code -9)" in out, out[-3000:]
    launch.assert_no_process_left()


def test_a_node_error_line_is_shown_when_it_ends_the_launch(tmp_path):
    # Nothing listens on 127.0.0.77: the controller gives up after its connect timeout.
    config = tmp_path / "config"
    config.mkdir()
    for yaml in (REPO / "config").glob("*.yaml"):
        text = yaml.read_text()
        if yaml.name == "controller.yaml":
            text = re.sub(r"connect_timeout_s: .*", "connect_timeout_s: 3.0", text)
        (config / yaml.name).write_text(text)
    with Launch(tmp_path, "use_sim:=false", "policy:=video_policy", "model:=models/video_policy_tiny",
                "robot_ip:=127.0.0.77", f"config_dir:={config}") as launch:
        code = launch.wait(timeout=60)
    out = launch.output
    assert code != 0
    died = next(line for line in out.splitlines() if "required node" in line)
    assert "'controller' died (exit code 2): error: robot_ip 127.0.0.77" in died, died
    launch.assert_no_process_left()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["rviz:=true"], "rviz2 is not installed"),
        (["use_sim:=false"], "cannot drive a real arm"),
        (["num_steps:=0", "policy:=video_policy", "model:=models/video_policy_tiny"], "'num_steps'"),
    ],
    ids=["rviz-missing", "expert-on-real-arm", "bad-override"],
)
def test_refused_before_anything_starts(tmp_path, arguments, message):
    with Launch(tmp_path, *arguments) as launch:
        code = launch.wait(timeout=60)
    out = launch.output
    assert code != 0
    assert message in out, out[-3000:]
    assert "process started" not in out, "a node was started although the launch is refused"
