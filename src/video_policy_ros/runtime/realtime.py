"""The inference node's core (no ROS): warm-up and latency budget, chunk scheduling, the
policy and video-decoding workers, and the figures diagnostics are made from.

The node calls :meth:`RealtimeChunker.tick` from a timer; ``tick`` only decides and hands
work to a worker thread, so no ROS callback ever waits for the policy. Chunks are published
from the policy worker as soon as they exist; the predicted video (optional, throttled) is
decoded afterwards in a second worker, off the chunk's critical path.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from video_policy_ros.policies.base import Policy
from video_policy_ros.runtime.async_worker import LatestOnlyWorker
from video_policy_ros.runtime.budget import BudgetReport, check_budget
from video_policy_ros.runtime.chunking import ChunkScheduler, LatencyWindow, timing_of
from video_policy_ros.runtime.health import HealthInputs, assess_health
from video_policy_ros.types import ActionChunk, CameraFrame, Observation, PolicyOutput

log = logging.getLogger(__name__)
WARMUP_POSE = np.array([0.5, 0.0, 0.4, 1.0, 0.0, 0.0, 0.0])  # a TCP pose inside the default workspace


@dataclass(frozen=True)
class ChunkerSettings:
    realtime: bool = True
    execute_horizon_s: float | None = None
    margin_s: float = 0.3
    warmup_calls: int = 3
    auto_steps: bool = False
    video_period_s: float = 1.0
    max_input_age_s: float = 0.5
    guidance: float | None = None  # only reported
    sampler: str | None = None  # only reported


def warmup_observation(policy: Policy, cameras: tuple[str, ...], instruction: str, now: float) -> Observation:
    """A neutral observation (grey images, a central pose) for timing warm-up calls."""
    frames = {c: CameraFrame(c, now, np.full((48, 64, 3), 128, np.uint8)) for c in (policy.camera_names or cameras)}
    return Observation(frames, WARMUP_POSE, 0.04, instruction or "warm-up")


class RealtimeChunker:
    def __init__(self, policy: Policy, settings: ChunkerSettings,
                 publish_chunk: Callable[[PolicyOutput], None],
                 publish_video: Callable[[float, dict[str, np.ndarray]], None],
                 clock: Callable[[], float] = time.time):
        self.policy = policy
        self.settings = settings
        self._publish_chunk = publish_chunk
        self._publish_video = publish_video
        self._clock = clock
        self.scheduler = ChunkScheduler(settings.realtime, settings.margin_s, settings.execute_horizon_s)
        self.latency = LatencyWindow()  # observation stamp → chunk published
        self.model_latency = LatencyWindow()  # policy.predict alone
        self.health = HealthInputs(margin_s=settings.margin_s, max_input_age_s=settings.max_input_age_s)
        self.last_chunk: ActionChunk | None = None
        self.ready = threading.Event()
        self._warmup_thread: threading.Thread | None = None
        self._next_video_at = float("-inf")
        self._worker = LatestOnlyWorker(policy.predict, self._on_output, self._on_error, "policy-worker")
        self._decoder = LatestOnlyWorker(lambda output: (output.chunk.stamp, output.decode_video()),
                                         self._on_video, self._on_error, "video-decoder")

    # ------------------------------------------------------------ start-up (worker-side thread)

    def start(self, observation: Observation) -> None:
        """Warm up and check the latency budget in a thread of its own; ``ready`` is set when done."""
        self._warmup_thread = threading.Thread(target=self._warm_up, args=(observation,), name="policy-warmup", daemon=True)
        self._warmup_thread.start()

    def _warm_up(self, observation: Observation) -> BudgetReport | None:
        try:
            report = self.check_budget(observation)
        except Exception as exc:  # a policy that cannot even warm up is reported like any policy error
            self._on_error(exc)
            report = None
        self.ready.set()
        return report

    def check_budget(self, observation: Observation) -> BudgetReport:
        policy = self.policy

        def measure(steps: int | None) -> float:
            if steps is not None:
                policy.num_steps = steps
            started = time.perf_counter()
            policy.predict(observation)
            return time.perf_counter() - started

        timing = policy.timing or timing_of(policy.predict(observation).chunk)
        report = check_budget(measure, policy.num_steps, self.settings.warmup_calls, self.scheduler.horizon_s(timing),
                              timing.duration_s, self.settings.margin_s, self.settings.auto_steps,
                              guidance=self.settings.guidance, sampler=self.settings.sampler)
        policy.reset()  # warm-up calls must not advance the policy's random stream
        self.health.budget = report
        self.health.horizon_s, self.health.duration_s = report.horizon_s, report.duration_s
        (log.info if report.level == "ok" else log.warning)(report.message)
        return report

    # ------------------------------------------------------------ called from the node's timer

    def tick(self, observe: Callable[[float], tuple[Observation | None, str]]) -> bool:
        """Submit a fresh observation if the next chunk is due; True when one was submitted. Never blocks."""
        if not self.ready.is_set() or self._worker.busy:
            return False
        now = self._clock()
        if not self.scheduler.due(now, self.last_chunk, self.policy.timing, self.latency.percentile(95)):
            return False
        observation, problem = observe(now)
        self.health.input_problem = problem
        if observation is None:
            return False
        self.health.input_age_s = now - observation.stamp
        self._worker.submit(observation)
        return True

    # ------------------------------------------------------------ worker threads

    def _on_output(self, output: PolicyOutput, model_seconds: float) -> None:
        previous = self.last_chunk
        self._publish_chunk(output)
        now = self._clock()
        chunk = output.chunk
        self.last_chunk = chunk
        self.latency.add(now - chunk.stamp)
        self.model_latency.add(model_seconds)
        h = self.health
        h.chunks += 1
        if previous is not None and now > previous.times[-1]:  # the arm had nothing left to run
            h.arm_waits += 1
            h.arm_wait_s += now - previous.times[-1]
        timing = self.policy.timing or timing_of(chunk)
        h.horizon_s, h.duration_s = self.scheduler.horizon_s(timing), timing.duration_s
        self._keep_within_budget()
        if output.decode_video is not None and now >= self._next_video_at:
            self._next_video_at = now + self.settings.video_period_s
            self._decoder.submit(output)

    def _keep_within_budget(self, min_chunks: int = 5) -> None:
        """num_steps auto: the start-up budget is measured on an idle graph; once the running graph's
        p95 latency misses the horizon, take one step fewer (and measure afresh)."""
        h, steps = self.health, self.policy.num_steps
        if not self.settings.auto_steps or steps is None or steps <= 1 or len(self.latency) < min_chunks:
            return
        if self.latency.percentile(95) + self.settings.margin_s > h.horizon_s:
            self.policy.num_steps = steps - 1
            self.latency, self.model_latency = LatencyWindow(), LatencyWindow()
            log.warning("latency p95 + margin exceeds the %.2f s execution horizon in the running graph: "
                        "num_steps auto %d -> %d", h.horizon_s, steps, steps - 1)

    def _on_video(self, result: tuple[float, dict[str, np.ndarray]], _seconds: float) -> None:
        self._publish_video(*result)

    def _on_error(self, exc: Exception) -> None:
        self.health.last_error = f"{type(exc).__name__}: {exc}"
        self.health.last_error_at = self._clock()
        log.error("policy failed, no chunk published: %s", self.health.last_error)

    # ------------------------------------------------------------ diagnostics

    def status(self) -> tuple[str, str, dict[str, object]]:
        h = self.health
        h.latency_p50_s, h.latency_p95_s = self.latency.percentile(50), self.latency.percentile(95)
        h.model_p50_s, h.model_p95_s = self.model_latency.percentile(50), self.model_latency.percentile(95)
        return assess_health(h, self._clock(), self.ready.is_set())

    def close(self) -> None:
        if self._warmup_thread is not None:
            self._warmup_thread.join(timeout=30.0)  # a warm-up call in flight must not outlive the interpreter
        self._worker.close()
        self._decoder.close()
