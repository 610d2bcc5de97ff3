"""The statistics every verdict of the book uses: means over seeds with their intervals, paired differences, how many
seeds would decide an open question, and the exact test for counts of collapsed seeds.

One convention throughout (issue 20):

* an accuracy's interval is clipped to [0, 100] and a difference's to [−100, 100] (a t interval over few seeds can
  reach past what an accuracy can be);
* with fewer than :data:`MIN_SEEDS_FOR_T` seeds, what is printed is the seeds' range, not a t interval (with one
  degree of freedom the 95% t interval is ±12.7 standard errors wide, and says little); verdicts still use the
  clipped t interval, which is the conservative choice;
* an open question says how many seeds would decide it at the measured spread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Below this many seeds an interval is printed as the seeds' range.
MIN_SEEDS_FOR_T = 3
#: The most seeds :func:`seeds_to_decide` looks for; beyond it a question is as good as undecidable by seeds.
MAX_SEEDS = 1000


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds (in points) with its 95% Student-t interval, clipped to ``limits``, and the values."""

    mean: float
    low: float
    high: float
    values: tuple[float, ...]
    limits: tuple[float, float] = (0.0, 100.0)

    @property
    def seeds(self) -> int:
        return len(self.values)

    @property
    def sd(self) -> float:
        return float(np.std(self.values, ddof=1)) if self.seeds >= 2 else math.nan

    @property
    def shows_range(self) -> bool:
        return 2 <= self.seeds < MIN_SEEDS_FOR_T

    def text(self, digits: int = 1, signed: bool = False) -> str:
        """``mean [low, high]``; ``mean (range low–high, 2 seeds)`` below MIN_SEEDS_FOR_T; ``mean`` for one seed."""
        if math.isnan(self.mean):
            return "–"
        f = (lambda v: f"{v:+.{digits}f}") if signed else (lambda v: f"{v:.{digits}f}")
        if self.seeds < 2:
            return f(self.mean)
        if self.shows_range:
            return f"{f(self.mean)} (range {f(min(self.values))} to {f(max(self.values))}, {self.seeds} seeds)"
        return f"{f(self.mean)} [{f(self.low)}, {f(self.high)}]"

    def interval_text(self, digits: int = 1, signed: bool = True) -> str:
        """The interval alone: ``[low, high]``, the range with "range", or "–"."""
        f = (lambda v: f"{v:+.{digits}f}") if signed else (lambda v: f"{v:.{digits}f}")
        if self.seeds < 2 or math.isnan(self.mean):
            return "–"
        if self.shows_range:
            return f"range {f(min(self.values))} to {f(max(self.values))}"
        return f"[{f(self.low)}, {f(self.high)}]"


def estimate(values, limits: tuple[float, float] = (0.0, 100.0), level: float = 0.95) -> Estimate:
    """The mean of ``values`` (NaNs dropped) with its Student-t interval clipped to ``limits`` (NaN bounds for
    fewer than two values; a zero spread gives a zero-width interval)."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return Estimate(math.nan, math.nan, math.nan, (), limits)
    mean = float(v.mean())
    if len(v) < 2:
        return Estimate(mean, math.nan, math.nan, tuple(v), limits)
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return Estimate(mean, max(limits[0], mean - half), min(limits[1], mean + half), tuple(v), limits)


def difference(values) -> Estimate:
    """A paired difference in points over seeds: :func:`estimate` clipped to [−100, 100]."""
    return estimate(values, limits=(-100.0, 100.0))


def seeds_to_decide(values, bound: float = 0.0, level: float = 0.95, max_seeds: int = MAX_SEEDS) -> int | None:
    """How many seeds would bring the 95% interval's half-width below the distance between the measured mean of
    ``values`` and ``bound``, were their spread what it is now: the smallest n with
    t(n−1)·sd/√n < |mean − bound|.
    None when it cannot be said (fewer than two values, or the mean sits on the bound) or exceeds ``max_seeds``."""
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) < 2:
        return None
    distance, sd = abs(float(v.mean()) - bound), float(v.std(ddof=1))
    if sd == 0:
        return len(v) if distance > 0 else None
    if distance == 0:
        return None
    for n in range(2, max_seeds + 1):
        if stats.t.ppf(0.5 + level / 2, n - 1) * sd / math.sqrt(n) < distance:
            return n
    return None


def seeds_note(values, bound: float = 0.0) -> str:
    """What a reader needs to know of an open question: how many seeds would decide it at the measured spread."""
    n = seeds_to_decide(values, bound)
    have = len([x for x in values if not math.isnan(x)])
    if have < 2:
        return "one seed: the spread over seeds, and so the seeds needed, is unknown"
    if n is None:
        return f"no number of seeds up to {MAX_SEEDS} would decide it at the measured spread"
    return f"about {n} seeds would decide it at the measured spread ({have} now)"


def fisher(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Two-sided Fisher exact test p-value of k_a of n_a against k_b of n_b (e.g. seeds that collapsed)."""
    return float(stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]], alternative="two-sided").pvalue)


def fisher_seeds_to_decide(k_a: int, n_a: int, k_b: int, n_b: int, level: float = 0.95,
                           max_seeds: int = MAX_SEEDS) -> int | None:
    """How many seeds per method would let Fisher's exact test separate two counts (e.g. seeds that collapsed), were
    the rates what they are now: the smallest n with p < 1 − level for round(n·k_a/n_a) of n against
    round(n·k_b/n_b) of n (halves rounded up). None when the rates are equal (no number of seeds separates them) or
    the answer exceeds ``max_seeds``."""
    rate_a, rate_b = k_a / n_a, k_b / n_b
    if rate_a == rate_b:
        return None
    for n in range(2, max_seeds + 1):
        if fisher(math.floor(rate_a * n + 0.5), n, math.floor(rate_b * n + 0.5), n) < 1 - level:
            return n
    return None
