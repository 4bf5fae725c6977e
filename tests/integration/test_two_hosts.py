"""Two hosts on this machine: the robot PC (sim world + controller + recorder) and the inference host, as two
network namespaces that the test creates and deletes, joined by one veth pair with addresses from the
documentation range 192.0.2.0/24 and no other. Each host runs the real `ros2 launch ... role:=robot|inference`.

DDS is kept honest about the link: discovery is unicast to the other host only (`static_peers:=`, with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST no multicast leaves a host), and Fast DDS uses UDP only, so nothing
crosses through shared memory as it would between processes of one real host."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.launch.launching import Launch
from video_policy_ros.config import ControllerConfig, PreflightConfig
from video_policy_ros.data.bag_reader import read_bag
from video_policy_ros.preflight.observations import Observations

ROBOT_ADDRESS, INFERENCE_ADDRESS = "192.0.2.1", "192.0.2.2"
NETWORK = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}
PARTITION_S = 5.0


def _cannot_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root (CAP_NET_ADMIN); CI runs as root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "needs iproute2 (ip, tc): apt-get install iproute2"
    probe = f"vpprobe{os.getpid() % 100000}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


REASON = _cannot_make_namespaces()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"
    return done.stdout


class Hosts:
    """The two namespaces and their link; ``with Hosts() as hosts:`` deletes them (and the veth pair) on exit."""

    def __init__(self):
        tag = f"vp{os.getpid() % 100000}"
        self.netns = {"robot": f"{tag}r", "inference": f"{tag}i"}
        self.device = {"robot": f"{tag}r0", "inference": f"{tag}i0"}
        self.address = {"robot": ROBOT_ADDRESS, "inference": INFERENCE_ADDRESS}

    def __enter__(self) -> "Hosts":
        for host in self.netns:
            ip("netns", "add", self.netns[host])
        ip("link", "add", self.device["robot"], "type", "veth", "peer", "name", self.device["inference"])
        for host, ns in self.netns.items():
            ip("link", "set", self.device[host], "netns", ns)
            ip("-n", ns, "addr", "add", f"{self.address[host]}/24", "dev", self.device[host])
            ip("-n", ns, "link", "set", self.device[host], "up")
            ip("-n", ns, "link", "set", "lo", "up")
        return self

    def __exit__(self, *exc) -> None:
        for ns in self.netns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def prefix(self, host: str) -> tuple[str, ...]:
        return ("ip", "netns", "exec", self.netns[host])

    def link(self, up: bool) -> None:
        ip("-n", self.netns["robot"], "link", "set", self.device["robot"], "up" if up else "down")

    def limit(self, rate: str | None) -> None:
        """A token-bucket limit on each direction of the link (this machine has no netem); None: no limit."""
        for host, ns in self.netns.items():
            qdisc = ["replace", "dev", self.device[host], "root", "tbf", "rate", rate, "burst", "64kb", "latency", "200ms"]
            subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", *(qdisc if rate else ["del", "dev", self.device[host],
                                                                                              "root"])],
                           check=rate is not None, capture_output=True)

    def sent_bytes(self, host: str) -> int:
        path = f"/sys/class/net/{self.device[host]}/statistics/tx_bytes"
        return int(subprocess.run([*self.prefix(host), "cat", path], capture_output=True, text=True, check=True).stdout)


@pytest.fixture
def hosts():
    with Hosts() as made:
        yield made


@contextlib.contextmanager
def two_hosts(tmp_path: Path, hosts: Hosts, robot: tuple[str, ...] = (), inference: tuple[str, ...] = (),
              inference_prefix: tuple[str, ...] = ()):
    with contextlib.ExitStack() as stack:
        robot_launch = stack.enter_context(Launch(
            tmp_path / "robot", "role:=robot", f"static_peers:={INFERENCE_ADDRESS}", *robot,
            prefix=hosts.prefix("robot"), env=NETWORK, name="robot"))
        inference_launch = stack.enter_context(Launch(
            tmp_path / "inference", "role:=inference", f"static_peers:={ROBOT_ADDRESS}", *inference,
            prefix=(*hosts.prefix("inference"), *inference_prefix), env=NETWORK, name="inference"))
        yield robot_launch, inference_launch


def assert_clean(*launches: Launch) -> None:
    for launch in launches:
        assert "Traceback" not in launch.output and "died" not in launch.output, launch.output[-3000:]


def test_a_sim_episode_succeeds_across_the_two_hosts_and_needs_the_peer_address(tmp_path, hosts):
    with two_hosts(tmp_path, hosts, robot=("exit_on_done:=true",)) as (robot, inference):
        code = robot.wait(timeout=150)
        inference.signal(2)
        assert inference.wait(timeout=30) == 0, inference.output[-3000:]
    assert code == 0 and "SUCCESS: " in robot.output, robot.output[-3000:]
    assert_clean(robot, inference)
    # The same through a discovery server on the robot PC (`video-policy discovery-server`), no peer addresses.
    server = subprocess.Popen([*hosts.prefix("robot"), str(Path(sys.prefix) / "bin" / "video-policy"), "discovery-server",
                               "--address", ROBOT_ADDRESS], stdout=(tmp_path / "server.log").open("w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        served = f"discovery_server:={ROBOT_ADDRESS}:11811"
        with contextlib.ExitStack() as stack:
            robot = stack.enter_context(Launch(tmp_path / "served", "role:=robot", "exit_on_done:=true", served,
                                               prefix=hosts.prefix("robot"), env=NETWORK, name="robot_served"))
            stack.enter_context(Launch(tmp_path / "served_inference", "role:=inference", served,
                                       prefix=hosts.prefix("inference"), env=NETWORK, name="inference_served"))
            code = robot.wait(timeout=150)
    finally:
        os.killpg(server.pid, 2)
        server.wait(timeout=10)
    assert code == 0 and "SUCCESS: " in robot.output, robot.output[-3000:] + (tmp_path / "server.log").read_text()
    # Without the peer's address nothing finds the other host: the graph above did not rely on multicast.
    with contextlib.ExitStack() as stack:
        alone = stack.enter_context(Launch(tmp_path / "alone", "role:=robot", prefix=hosts.prefix("robot"), env=NETWORK,
                                           name="robot_alone"))
        stack.enter_context(Launch(tmp_path / "alone_inference", "role:=inference", prefix=hosts.prefix("inference"),
                                   env=NETWORK, name="inference_alone"))
        time.sleep(20)
        listed = subprocess.run([*hosts.prefix("robot"), str(Path(sys.prefix) / "bin" / "ros2"), "node", "list",
                                 "--no-daemon", "--spin-time", "5"], env=alone.env, capture_output=True, text=True)
    nodes = listed.stdout.split()
    assert "/controller" in nodes and "/inference" not in nodes, listed.stdout + listed.stderr


def _throughput(hosts: Hosts, seconds: float = 10.0) -> float:
    """Mbit/s sent from the robot PC to the inference host."""
    before, start = hosts.sent_bytes("robot"), time.monotonic()
    time.sleep(seconds)
    return (hosts.sent_bytes("robot") - before) * 8 / 1e6 / (time.monotonic() - start)


def test_raw_and_compressed_images_over_the_link_and_a_20_mbit_one(tmp_path, hosts):
    """Both cameras' images cross the link (the episode's result and time show what a slow link costs);
    the README's bandwidth table comes from this test's printout."""
    rows = {}
    for transport, limit in (("raw", None), ("raw", "20mbit"), ("compressed", "20mbit")):
        hosts.limit(limit)
        with two_hosts(tmp_path / f"{transport}_{limit}", hosts, inference=(f"image_transport:={transport}",),
                       robot=("exit_on_done:=true", f"image_transport:={transport}")) as (robot, inference):
            inference.wait_for_output(r"task: ", timeout=90)
            rate = _throughput(hosts, seconds=4.0)
            code = robot.wait(timeout=120)
            inference.signal(2)
            inference.wait(timeout=30)
        took = re.search(r"SUCCESS: .*?, ([\d.]+) s,", robot.output)
        rows[transport, limit] = (rate, code, took.group(1) if took else "-")
        assert_clean(robot, inference)
    print("\n".join(f"{t} images, link {limit or 'unlimited'}: {rate:.1f} Mbit/s robot PC -> inference host "
                    f"(2 cameras, 320x240 at 15 Hz), episode exit {code} after {took} s"
                    for (t, limit), (rate, code, took) in rows.items()))
    assert rows["compressed", "20mbit"][1] == 0, "the episode must succeed with compressed images over 20 Mbit/s"
    assert rows["compressed", "20mbit"][0] < rows["raw", None][0] / 3, rows


def place_config(folder: Path) -> Path:
    """The installed config with the place task: an episode long enough to cut the link in the middle of."""
    shutil.copytree(Path(sys.prefix) / "share" / "video_policy_ros" / "config", folder)
    sim = yaml.safe_load((folder / "sim_world.yaml").read_text())
    sim["task"] = {**sim.get("task", {}), "kind": "place"}
    (folder / "sim_world.yaml").write_text(yaml.safe_dump(sim))
    return folder


def test_a_5_s_partition_halts_the_arm_on_silence_and_the_graph_resumes(tmp_path, hosts):
    config = f"config_dir:={place_config(tmp_path / 'config')}"
    with two_hosts(tmp_path, hosts, robot=("exit_on_done:=true", "record:=true", config), inference=(config,)) as (robot, inference):
        inference.wait_for_output(r"task: put the", timeout=90)
        time.sleep(2.0)  # the expert's chunks are moving the arm toward the cube
        down = time.time()
        hosts.link(False)
        time.sleep(PARTITION_S)
        up = time.time()
        hosts.link(True)
        code = robot.wait(timeout=150)
        inference.signal(2)
        assert inference.wait(timeout=30) == 0, inference.output[-3000:]
    assert_clean(robot, inference)
    assert code == 0 and "SUCCESS: " in robot.output, robot.output[-3000:]
    (bag_path,) = [p for p in (tmp_path / "robot" / "home" / "bags").iterdir() if p.is_dir() and p.name != "discarded"]
    bag = read_bag(bag_path)
    chunks = np.array([ns * 1e-9 for ns, _ in bag.topics["/policy/action_chunk"]])
    assert not np.any((chunks > down + 0.5) & (chunks < up)), "chunks crossed a link that was down"
    resumed = chunks[chunks > up]
    assert resumed.size, "no chunk after the link came back"
    # The last chunk's plan either ended before the silence deadline or the silence halt stopped it (braking at
    # the caps); from then on the arm only settles onto its last set-point: preflight's inference_crash measure.
    halts = max([int(kv.value) for _, msg in bag.topics["/diagnostics"] for status in msg.status
                 if status.name == "controller" for kv in status.values if kv.key == "silence_halts"], default=0)
    controller, site = ControllerConfig(), PreflightConfig()
    # The silence counts on the wall clock, the braking after it on the robot's (the sim's runs slower under load).
    robot_clock = Observations(diagnostics=[(ns * 1e-9, status.message, {kv.key: kv.value for kv in status.values})
                                            for ns, msg in bag.topics["/diagnostics"] for status in msg.status
                                            if status.name == "controller"])
    due = robot_clock.after_robot_seconds(down + controller.max_chunk_silence_s, site.silence_halt_margin_s
                                          + controller.max_linear_speed / controller.max_linear_acceleration)
    # Measurement stamps (the robot PC's clock, as the test's): the recorder's receive times lag under load.
    held = np.array([[p.x, p.y, p.z] for _, msg in bag.topics["/ee_pose"] for p in [msg.pose.position]
                     if due < msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9 < up])
    assert len(held), f"no /ee_pose between the halt deadline ({due - down:.2f} s into the partition) and its end"
    travel = float(np.linalg.norm(held - held[0], axis=1).max())
    print(f"partition {PARTITION_S:.0f} s: first chunk {resumed[0] - up:.2f} s after the link came back; TCP travel "
          f"from {due - down:.2f} s into it {travel * 1e3:.1f} mm; silence halts {halts}")
    assert travel <= site.max_halt_travel_m


def test_a_clock_offset_on_the_inference_host_is_one_clear_error(tmp_path, hosts):
    if shutil.which("faketime") is None:
        pytest.skip("needs faketime (apt-get install faketime) to shift the inference host's clock")
    with two_hosts(tmp_path, hosts, inference_prefix=("faketime", "-f", "+2s")) as (robot, inference):
        inference.wait_for_output(r"clock offset: camera '\w+' frames keep arriving, each stamped 2\.\d\d s before it arrives",
                                  timeout=90)
        time.sleep(10.0)
        said = re.findall(r"clock offset:", inference.output)
    assert len(said) == 1, f"said {len(said)} times:\n{inference.output[-3000:]}"
    assert "synchronise the clocks (chrony or PTP" in inference.output
    assert "rejected a chunk" not in robot.output  # no stream of rejections: no chunk was made from bad stamps
    assert_clean(robot, inference)
