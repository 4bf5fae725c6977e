"""Runs a slow policy off the ROS callbacks: one worker thread, a one-slot mailbox.

Submitting replaces any observation still waiting, so the policy always works on
the freshest input and a slow policy never builds up a backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from video_policy_ros.policies.base import Policy
from video_policy_ros.types import Observation, PolicyOutput

log = logging.getLogger(__name__)


class AsyncPolicyRunner:
    def __init__(
        self,
        policy: Policy,
        on_output: Callable[[PolicyOutput, float], None],
        on_error: Callable[[Exception], None],
    ):
        """``on_output(output, latency_s)`` and ``on_error(exc)`` are called from the worker thread."""
        self.policy = policy
        self._on_output = on_output
        self._on_error = on_error
        self._pending: Observation | None = None
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="policy-worker", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy or self._pending is not None

    def submit(self, observation: Observation) -> None:
        with self._cv:
            self._pending = observation
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(timeout=10.0)

    def _run(self) -> None:
        while True:
            with self._cv:
                while self._pending is None and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                observation, self._pending = self._pending, None
                self._busy = True
            started = time.monotonic()
            try:
                output = self.policy.predict(observation)
            except Exception as exc:  # reported, the worker keeps serving
                self._on_error(exc)
            else:
                self._on_output(output, time.monotonic() - started)
            finally:
                with self._cv:
                    self._busy = False
