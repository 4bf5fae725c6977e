"""The Policy port: the inference node talks to every policy through this."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from video_policy_ros.types import Observation, PolicyOutput


@dataclass(frozen=True)
class ChunkTiming:
    """How a policy's chunks are meant to be executed: ``execute_steps`` of ``horizon_steps``, ``dt`` apart."""

    dt: float
    horizon_steps: int
    execute_steps: int

    @property
    def duration_s(self) -> float:
        """When the chunk's last point is due, after its stamp: later than that the arm waits."""
        return self.horizon_steps * self.dt

    @property
    def execute_s(self) -> float:
        """The part of the chunk the arm should run before the next chunk takes over."""
        return self.execute_steps * self.dt


class Policy(ABC):
    """Maps an observation to a chunk of absolute TCP targets.

    Implementations must be safe to call from one background thread; ``predict``
    may be slow (the inference node hides that latency).
    """

    #: Cameras the policy needs, in the order it consumes them.
    camera_names: tuple[str, ...] = ()

    @abstractmethod
    def predict(self, observation: Observation) -> PolicyOutput:
        """Return the next chunk, whose stamp is ``observation.stamp``."""

    def reset(self) -> None:
        """Forget any per-episode state (a new task or episode starts)."""

    @property
    def description(self) -> str:
        """One line for logs and diagnostics."""
        return type(self).__name__

    @property
    def timing(self) -> ChunkTiming | None:
        """The chunk timing known before the first chunk, or None (then the first chunk tells)."""
        return None

    @property
    def num_steps(self) -> int | None:
        """Sampler steps per chunk, for policies whose cost is set by a step count (None: not adjustable)."""
        return None

    @num_steps.setter
    def num_steps(self, steps: int) -> None:
        raise TypeError(f"{type(self).__name__} has no adjustable step count")
