"""The Policy port: the inference node talks to every policy through this."""

from __future__ import annotations

from abc import ABC, abstractmethod

from video_policy_ros.types import Observation, PolicyOutput


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

