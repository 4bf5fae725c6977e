"""Success rates with 95 % Wilson score intervals, per task and overall."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

Z_95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; (0, 1) when there are no trials.

    Unlike the normal approximation it stays inside [0, 1] and is not empty at 0 or n
    successes, which is what small evaluation runs produce.
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials], got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


@dataclass(frozen=True)
class SuccessRate:
    successes: int
    episodes: int

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.successes, self.episodes)

    def to_dict(self) -> dict:
        low, high = self.interval
        return {**asdict(self), "rate": self.rate, "wilson95": [low, high]}

    def __str__(self) -> str:
        low, high = self.interval
        return f"{self.successes}/{self.episodes} = {self.rate:.0%} (95 % CI {low:.0%}-{high:.0%})"


def success_rates(outcomes: list[tuple[str, bool]]) -> dict[str, SuccessRate]:
    """``(task, success)`` per episode → a rate per task, plus ``"all"``."""
    rates = {}
    for task in sorted({task for task, _ in outcomes}):
        hits = [ok for t, ok in outcomes if t == task]
        rates[task] = SuccessRate(sum(hits), len(hits))
    rates["all"] = SuccessRate(sum(ok for _, ok in outcomes), len(outcomes))
    return rates
