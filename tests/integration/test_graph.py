"""The whole graph as launch runs it: sim world, controller (franky backend) and inference as
separate processes, observed from outside through the topic contract only.

One scenario, recorded once: the three processes start at the same instant in a shuffled
order (as ``ros2 launch`` starts them); the arm starts moving towards the target; we measure
topic rates and stamps, press the e-stop, check that the arm halts and stays
halted while the policy keeps sending chunks, reset; then the inference process is killed
and restarted (the graph picks it up again), and the arm finishes the task.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import MultiDOFJointTrajectory

from video_policy_ros.preflight.observations import wait_for
from video_policy_ros.preflight.processes import node_process, robot_ip_for_this_process, stop
from video_policy_ros.nodes.conversions import from_time
from video_policy_ros.nodes.base import private_context

pytestmark = pytest.mark.integration
SEED = 1


@dataclass
class Recording:
    """(receive time, header stamp[, speed]) per topic, appended from the executor thread."""

    images: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: {"front": [], "wrist": []})
    joints: list[tuple[float, float, float]] = field(default_factory=list)  # receive, stamp, max |joint velocity|
    chunk_stamps: list[float] = field(default_factory=list)
    chunk_arrivals: list[float] = field(default_factory=list)
    events: dict[str, float] = field(default_factory=dict)
    reset_response: Trigger.Response | None = None
    sim_output: str = ""
    rendered_fps: list[dict[str, str]] = field(default_factory=list)  # the sim world's own count, per diagnostics

    def speed_at(self, t: float) -> float:
        return next(s for r, _, s in self.joints if r >= t)

    def max_speed_between(self, t0: float, t1: float) -> float:
        return max(s for r, _, s in self.joints if t0 <= r <= t1)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Recording:
    tmp = tmp_path_factory.mktemp("graph")
    ip = robot_ip_for_this_process()
    rec = Recording()
    # As launch does: every process at the same instant, in no particular order.
    order = ["sim_world", "controller", "inference"]
    random.Random(os.getpid()).shuffle(order)
    print("start order:", order)
    params = {
        "sim_world": {"robot_ip": ip, "seed": SEED, "output_dir": tmp},
        "controller": {"robot_ip": ip},
        "inference": {"sim_seed": SEED},
    }
    started = {name: node_process(name, params[name], tmp / f"{name}.log") for name in order}
    context = private_context()
    node = rclpy.create_node("graph_observer", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def on_image(cam):
        return lambda msg: rec.images[cam].append((time.time(), from_time(msg.header.stamp)))

    def on_joints(msg: JointState):
        rec.joints.append((time.time(), from_time(msg.header.stamp), float(np.max(np.abs(msg.velocity[:7])))))

    for cam in rec.images:
        node.create_subscription(Image, f"/cameras/{cam}/image_raw", on_image(cam), qos_profile_sensor_data)
    node.create_subscription(JointState, "/joint_states", on_joints, 10)
    def on_chunk(msg: MultiDOFJointTrajectory):
        rec.chunk_arrivals.append(time.time())
        rec.chunk_stamps.append(from_time(msg.header.stamp))

    node.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", on_chunk, 10)

    def on_diagnostics(msg: DiagnosticArray):
        rec.rendered_fps += [{kv.key: kv.value for kv in st.values if kv.key.endswith("_fps")}
                             for st in msg.status if st.name == "sim_world"]

    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    estop = node.create_publisher(Bool, "/controller/estop", 10)
    reset = node.create_client(Trigger, "/controller/reset")
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        wait_for(lambda: rec.joints and rec.joints[-1][2] > 0.05, 60, "the arm to start moving")
        rec.events["moving"] = time.time()
        # This observer may discover a camera topic after the arm starts (seen 1.4 s late under CI load);
        # the rate window below runs from then until the reset.
        wait_for(lambda: all(rec.images.values()), 30, "images from every camera")
        time.sleep(0.5)
        estop.publish(Bool(data=True))
        rec.events["estop"] = time.time()
        time.sleep(3.0)  # the policy keeps publishing chunks meanwhile
        rec.events["reset"] = time.time()
        assert reset.wait_for_service(timeout_sec=5.0)
        future = reset.call_async(Trigger.Request())
        wait_for(future.done, 10, "the reset service")
        rec.reset_response = future.result()
        # The policy process dies and comes back on its own: the graph picks it up again.
        started["inference"].kill()
        started["inference"].wait()
        rec.events["inference_killed"] = time.time()
        started["inference"] = node_process("inference", params["inference"], tmp / "inference_restarted.log")
        wait_for(lambda: any(s > rec.events["inference_killed"] for s in rec.chunk_arrivals), 60,
                 "chunks from the restarted inference node")
        sim_log = tmp / "sim_world.log"
        wait_for(lambda: "SUCCESS: " in sim_log.read_text() or "FAILURE: " in sim_log.read_text(), 90,
                 "the episode's result")
        rec.events["done"] = time.time()
    finally:
        for process in started.values():
            stop(process)
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        rec.sim_output = (tmp / "sim_world.log").read_text()
        for log in sorted(tmp.glob("*.log")):
            print(f"----- {log.name} -----\n" + log.read_text()[-3000:])
    return rec


def test_the_arm_completes_the_task(recording):
    assert "SUCCESS: touch the" in recording.sim_output
    video = recording.sim_output.split("video of the front camera: ")[1].split()[0]
    assert video.endswith(".mp4")


def test_topic_rates(recording):
    # From when every stream had been discovered (plus a margin) until the reset, all processes busy.
    first = max(samples[0][0] for samples in [*recording.images.values(), recording.joints])
    t0, t1 = first + 0.5, recording.events["reset"]
    assert t1 - t0 > 2.0, "measurement window too short"  # >= 30 frames per camera, 400 joint states
    def rate(receive_times):
        return sum(t0 <= r <= t1 for r in receive_times) / (t1 - t0)

    rates = {f"/cameras/{cam}/image_raw": rate(r for r, _ in s) for cam, s in recording.images.items()}
    rates["/joint_states"] = rate(r for r, _, _ in recording.joints)
    print("measured rates (Hz):", {topic: round(hz, 1) for topic, hz in rates.items()})
    print("rendered by the sim world (Hz, per diagnostics message):", recording.rendered_fps)  # where frames go missing
    for topic, minimum in [("/cameras/front/image_raw", 10), ("/cameras/wrist/image_raw", 10), ("/joint_states", 100)]:
        assert rates[topic] >= minimum, f"{topic} at {rates[topic]:.1f} Hz < {minimum} Hz"


def test_stamps_are_measurement_times(recording):
    for topic, samples in [("front", recording.images["front"]), ("joint_states", recording.joints)]:
        latency = np.array([r - s for r, s, *_ in samples])
        assert np.all(latency > 0), f"{topic}: a stamp lies in the future"
        assert np.median(latency) < 0.2, f"{topic}: stamps lag reception by {np.median(latency):.3f} s"
    # Image stamps are the render state's physics time, so consecutive stamps follow the camera clock...
    stamps = np.array([s for _, s in recording.images["front"]])
    assert np.all(np.diff(stamps) > 0)
    # ...and every action chunk is stamped with the measurement time of an image it was computed from. Equal
    # within 1 us: a stamp passes through float seconds, which resolve ~0.24 us at today's epoch time.
    per_camera = {cam: np.array(sorted(s for _, s in samples)) for cam, samples in recording.images.items()}
    assert recording.chunk_stamps, "no action chunk was published"

    def offset_to_nearest_image(stamp: float) -> dict[str, float]:
        return {cam: stamps[np.abs(stamps - stamp).argmin()] - stamp for cam, stamps in per_camera.items()}

    def is_an_image_stamp(stamp: float) -> bool:
        return min(abs(offset) for offset in offset_to_nearest_image(stamp).values()) <= 1e-6

    def observer_lost_a_frame_around(stamp: float) -> bool:
        """The observer subscribes best-effort (sensor-data QoS) and, on a loaded machine, can lose a frame
        that the inference node got: a chunk stamped inside such a gap of its stream cannot be checked."""
        for stamps in per_camera.values():
            i = np.searchsorted(stamps, stamp)
            if 0 < i < len(stamps) and stamps[i] - stamps[i - 1] > 1.5 * np.median(np.diff(stamps)):
                return True
        return False

    # Only chunks computed from images this observer could have seen (it discovers the topics late).
    first_seen = max(samples[0][1] for samples in recording.images.values())
    checkable = [s for s in recording.chunk_stamps
                 if s >= first_seen and (is_an_image_stamp(s) or not observer_lost_a_frame_around(s))]
    assert len(checkable) >= 3, "too few chunks after the observer saw its first images"
    unmatched = [f"{s:.6f} (nearest images: " + ", ".join(f"{cam} {1e6 * o:+.2f} us" for cam, o in
                                                          offset_to_nearest_image(s).items()) + ")"
                 for s in checkable if not is_an_image_stamp(s)]
    assert not unmatched, f"chunk stamps that are not observation (image) stamps: {unmatched}"


def test_estop_halts_within_half_a_second_and_latches_until_reset(recording):
    ev = recording.events
    assert recording.speed_at(ev["estop"] - 0.05) > 0.05, "the arm was not moving when the e-stop was pressed"
    residual = recording.max_speed_between(ev["estop"] + 0.5, ev["reset"])
    print(f"max joint speed from 0.5 s after the e-stop until reset: {residual:.4f} rad/s")
    assert residual < 0.01, "arm still moving after e-stop"
    chunks_while_stopped = [s for s in recording.chunk_stamps if ev["estop"] + 0.5 < s < ev["reset"]]
    assert chunks_while_stopped, "the policy must keep sending chunks during the stop for this test to mean anything"
    assert recording.reset_response.success, recording.reset_response.message
    assert recording.max_speed_between(ev["reset"], ev["done"]) > 0.05, "the arm did not resume after reset"
