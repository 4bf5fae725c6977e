"""Runs slow work off the ROS callbacks: one worker thread, a one-slot mailbox.

Submitting replaces any input still waiting, so the worker always works on the
freshest input and slow work never builds up a backlog. The inference node uses
one for the policy and one for decoding the predicted video.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Generic, TypeVar

log = logging.getLogger(__name__)
In = TypeVar("In")
Out = TypeVar("Out")


class LatestOnlyWorker(Generic[In, Out]):
    def __init__(
        self,
        work: Callable[[In], Out],
        on_result: Callable[[Out, float], None],
        on_error: Callable[[Exception], None],
        name: str = "worker",
    ):
        """``on_result(result, seconds)`` and ``on_error(exc)`` are called from the worker thread."""
        self._work = work
        self._on_result = on_result
        self._on_error = on_error
        self._pending: In | None = None
        self._cv = threading.Condition()
        self._closed = False
        self._busy = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        with self._cv:
            return self._busy or self._pending is not None

    def submit(self, item: In) -> None:
        with self._cv:
            self._pending = item
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
                item, self._pending = self._pending, None
                self._busy = True
            started = time.monotonic()
            try:
                result = self._work(item)
            except Exception as exc:  # reported, the worker keeps serving
                self._on_error(exc)
            else:
                self._on_result(result, time.monotonic() - started)
            finally:
                with self._cv:
                    self._busy = False
