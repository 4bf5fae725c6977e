"""One evaluation episode through the ROS graph that ``video-policy run`` composes.

The sim world runs in a child process (it stands in for the hardware) and reports
its TaskResult back; the controller and inference nodes run in this process, each
episode in an rclpy context of its own, next to an :class:`EpisodeVideoNode` that
writes the camera beside the predicted video to an mp4.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from trajectory_msgs.msg import MultiDOFJointTrajectory

from video_policy_ros.config import ControllerConfig, InferenceConfig, SimWorldConfig
from video_policy_ros.data.video import VideoRecorder
from video_policy_ros.errors import StackError
from video_policy_ros.evaluation.episode_video import side_by_side
from video_policy_ros.nodes import conversions as conv
from video_policy_ros.nodes.base import StackNode
from video_policy_ros.sim.task import TaskResult
from video_policy_ros.nodes.base import private_context

RESULT_WAIT_S = 10.0  # after the sim world exits, how long its result may take to arrive
STARTUP_GRACE_S = 60.0  # on top of the task timeout: sim world start-up and the policy's first chunk
WARMUP_TIMEOUT_S = 300.0  # loading and warming up the policy, before the episode starts


@dataclass(frozen=True)
class EpisodeSpec:
    sim_world: SimWorldConfig  # seed, task and timeout of this episode
    controller: ControllerConfig
    inference: InferenceConfig
    video_path: Path | None
    record_camera: str = "front"
    predicted_frames: int | None = None  # frames per predicted video (None: the policy predicts none)


@dataclass(frozen=True)
class EpisodeOutcome:
    result: TaskResult | None  # None when the episode did not end (error says why)
    wall_s: float
    chunks: int  # action chunks the inference node published
    video: Path | None
    error: str | None = None


class EpisodeVideoNode(StackNode):
    """Camera frames composed with the latest predicted video → mp4; counts the published chunks."""

    def __init__(self, spec: EpisodeSpec, **node_kwargs):
        super().__init__("episode_video", **node_kwargs)
        camera = next(c for c in spec.sim_world.cameras if c.name == spec.record_camera)
        self._frames = spec.predicted_frames
        self._latest_prediction = None
        self.chunks = 0
        self._recorder = VideoRecorder(spec.video_path, camera.fps) if spec.video_path else None
        self.create_subscription(Image, f"/cameras/{camera.name}/image_raw", self._on_camera, qos_profile_sensor_data)
        self.create_subscription(Image, f"/policy/predicted_video/{camera.name}", self._on_prediction,
                                 qos_profile_sensor_data)
        self.create_subscription(MultiDOFJointTrajectory, "/policy/action_chunk", self._on_chunk, 10)

    def _on_chunk(self, msg: MultiDOFJointTrajectory) -> None:
        self.chunks += 1

    def _on_prediction(self, msg: Image) -> None:
        self._latest_prediction = conv.frame_from_msg("prediction", msg).image

    def _on_camera(self, msg: Image) -> None:
        if self._recorder is not None:
            frame = conv.frame_from_msg("camera", msg).image
            self._recorder.add(side_by_side(frame, self._latest_prediction, self._frames))

    def finish(self) -> Path | None:
        """Close the mp4 and return its path."""
        recorder, self._recorder = self._recorder, None
        return recorder.close() if recorder is not None else None

    def close(self) -> None:
        self.finish()


def run_episode(spec: EpisodeSpec) -> EpisodeOutcome:
    """Run one episode to its end (success or the task timeout) and return what happened.

    The policy loads and warms up first; the sim world, whose clock is the episode's, starts
    after that. A user's run warms up while the scene is still being set up; counting a
    checkpoint's load and warm-up against the task timeout would judge the machine, not the policy.
    """
    import rclpy
    from rclpy.executors import MultiThreadedExecutor

    from video_policy_ros.nodes.controller_node import ControllerNode
    from video_policy_ros.nodes.graph import start_sim_world
    from video_policy_ros.nodes.inference_node import InferenceNode

    started = time.monotonic()
    context = private_context(["--ros-args", "--log-level", "warn"])  # info lines would bury the progress bar
    nodes: list[StackNode] = []
    sim = None
    try:
        inference = InferenceNode(spec.inference, context=context)
        nodes.append(inference)
        if not inference.chunker.ready.wait(timeout=WARMUP_TIMEOUT_S):
            return EpisodeOutcome(None, time.monotonic() - started, 0, None,
                                  f"the policy did not warm up within {WARMUP_TIMEOUT_S:g} s")
        results = multiprocessing.get_context("spawn").Queue()
        sim = start_sim_world(spec.sim_world.model_copy(update={"record_camera": None}), results)
        if not sim.ready.wait(timeout=STARTUP_GRACE_S) or not sim.is_alive():
            return EpisodeOutcome(None, time.monotonic() - started, 0, None, "the sim world failed to start")
        video_node = EpisodeVideoNode(spec, context=context)
        nodes.append(video_node)
        try:
            nodes.append(ControllerNode(spec.controller, context=context))
        except StackError as exc:  # e.g. the arm's state stream timed out on a loaded machine: this episode only
            return EpisodeOutcome(None, time.monotonic() - started, 0, video_node.finish(), f"controller: {exc}")
        executor = MultiThreadedExecutor(num_threads=4, context=context)
        for node in nodes:
            executor.add_node(node)
        deadline = time.monotonic() + spec.sim_world.task.timeout_s + STARTUP_GRACE_S
        while sim.is_alive() and time.monotonic() < deadline and all(n.exit_code is None for n in nodes):
            executor.spin_once(timeout_sec=0.1)
        try:
            result = results.get(timeout=RESULT_WAIT_S)
        except queue.Empty:
            result = None
        error = None if result is not None else "the episode did not end (sim world stopped or graph timed out)"
        return EpisodeOutcome(result, time.monotonic() - started, video_node.chunks, video_node.finish(), error)
    finally:
        for node in reversed(nodes):
            node.close()
            node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
        if sim is not None:
            if sim.is_alive():
                sim.terminate()
            sim.join(timeout=10)
