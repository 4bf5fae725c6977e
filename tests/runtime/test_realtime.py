"""RealtimeChunker with a fast policy and a hand-driven clock: when chunks are requested, how the
predicted video is throttled and stamped, and the arm-wait bookkeeping."""

from __future__ import annotations

import time

import numpy as np

from video_policy_ros.policies.base import ChunkTiming, Policy
from video_policy_ros.runtime.realtime import ChunkerSettings, RealtimeChunker
from video_policy_ros.types import ActionChunk, CameraFrame, Observation, PolicyOutput

POSE = np.array([0.5, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0])


class InstantPolicy(Policy):
    """Isolates the scheduling from any model: 4-step chunks (0.5 s), 2 steps executed, a one-frame video.
    (Steps of 1/8 s keep every time exact in binary floating point.)"""

    camera_names = ("front",)
    timing = ChunkTiming(dt=0.125, horizon_steps=4, execute_steps=2)

    def predict(self, observation):
        chunk = ActionChunk(observation.stamp, 0.125, np.tile(POSE, (4, 1)), np.zeros(4))
        return PolicyOutput(chunk, decode_video=lambda: {"front": np.zeros((1, 2, 2, 3), np.uint8)})


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def observation(stamp: float) -> Observation:
    return Observation({"front": CameraFrame("front", stamp, np.zeros((2, 2, 3), np.uint8))}, POSE, 0.0, "touch")


class SteppedPolicy(InstantPolicy):
    num_steps = 4


def run(realtime: bool, tick_times: list[float], policy: Policy | None = None, publish_takes_s: float = 0.0,
        auto_steps: bool = False) -> tuple[list[float], list[float], RealtimeChunker]:
    clock, chunks, videos = Clock(tick_times[0]), [], []

    def publish(output):  # the clock moves on while a chunk is published: that is its latency
        chunks.append(output.chunk.stamp)
        clock.now += publish_takes_s

    chunker = RealtimeChunker(policy or InstantPolicy(),
                              ChunkerSettings(realtime=realtime, margin_s=0.0, warmup_calls=1, video_period_s=1.0,
                                              auto_steps=auto_steps),
                              publish, lambda stamp, frames: videos.append(stamp), clock)
    chunker.start(observation(tick_times[0]))
    assert chunker.ready.wait(10)
    try:
        for t in tick_times:
            clock.now = t
            if chunker.tick(lambda now: (observation(now), "")):
                deadline = time.monotonic() + 5
                while (chunker._worker.busy or chunker._decoder.busy) and time.monotonic() < deadline:
                    time.sleep(0.001)
    finally:
        chunker.close()
    return chunks, videos, chunker


def test_realtime_requests_each_chunk_at_the_execution_horizon_and_throttles_the_video():
    ticks = [100.0 + 0.125 * i for i in range(13)]  # 100.0 .. 101.5
    chunks, videos, chunker = run(realtime=True, tick_times=ticks)
    # Latency is 0 on this clock, so a chunk is due 0.25 s (2 steps) after the previous one's stamp.
    assert chunks == [100.0, 100.25, 100.5, 100.75, 101.0, 101.25, 101.5]
    assert videos == [100.0, 101.0], "at most one video per second, stamped with its observation"
    assert chunker.health.arm_waits == 0
    _, _, values = chunker.status()
    assert values["chunks"] == 7 and values["execute_horizon_ms"] == "250" and values["chunk_duration_ms"] == "500"


def test_stop_and_go_waits_for_the_chunk_to_run_out_and_counts_the_arm_waits():
    ticks = [100.0 + 0.125 * i for i in range(13)]
    chunks, _, chunker = run(realtime=False, tick_times=ticks)
    assert chunks == [100.0, 100.5, 101.0, 101.5]
    assert chunker.health.arm_waits == 0  # on this clock the chunk lands the instant the previous one ends


def test_auto_steps_drops_a_step_when_the_running_graph_misses_the_horizon():
    policy = SteppedPolicy()
    ticks = [100.0 + 0.5 * i for i in range(12)]
    run(realtime=True, tick_times=ticks, policy=policy, publish_takes_s=0.375, auto_steps=True)
    # 0.375 s stamp -> published against a 0.25 s horizon: one step fewer after 5 chunks, again after 5 more.
    assert policy.num_steps == 2
    fixed = SteppedPolicy()
    run(realtime=True, tick_times=ticks, policy=fixed, publish_takes_s=0.375, auto_steps=False)
    assert fixed.num_steps == 4, "a configured step count is never changed"
