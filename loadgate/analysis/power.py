"""How many A/B rounds detect a given change: the power calculation behind ``loadgate ab``.

This module owns the arithmetic (docs/compare.md, "Power: how many rounds"):

* :func:`minimum_detectable` — the smallest true change that ``k`` paired rounds
  detect with probability ``power``, given the per-round spread ``sd`` of the
  paired difference and the per-test two-sided level ``alpha``:
  ``(t(1 − α/2; k − 1) + t(power; k − 1)) · sd / √k``. This is the usual
  shifted-central-t approximation of the noncentral t; the unit tests check it
  against a seeded simulation of the paired test.
* :func:`rounds_needed` — the smallest ``k`` whose minimum detectable change is
  at most the change asked for.
* :func:`duration_needed` — the run length that would let ``k`` rounds reach
  it, when the within-run part of the spread shrinks as 1 / duration and the
  between-round excess does not (advice for the next session: one session's
  rounds must share one duration to be comparable).
* :func:`paired_spread` — ``sd`` from results, as ``compare --paired`` sees it:
  per round the quantile's difference and its within-run standard error
  (order-statistic or batch means, :func:`loadgate.analysis.stats.run_quantile`);
  ``sd² = max(variance of the differences, mean within-run variance)``, the
  same method-of-moments floor that :func:`~loadgate.analysis.stats.combine_runs`
  uses, so the plan and the verdict see one variance.

α is the compare's Bonferroni level, ``(1 − confidence) / tests``: the verdict
that ``ab`` exits on is Bonferroni-corrected over every tested row, so a plan at
the named metric's own α would promise a power the verdict does not have.
Degrees of freedom are always ``k − 1`` (the compare uses more when the
within-run error dominates): the plan is conservative, never optimistic.
The t quantiles are :func:`~loadgate.analysis.stats.t_crit` (why no scipy: its
docstring).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from loadgate.analysis.stats import run_quantile, t_crit
from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode
from loadgate.histograms.recorder import BATCHED_METRICS
from loadgate.result.model import Result

__all__ = [
    "MAX_SEARCH",
    "Plan",
    "Spread",
    "Target",
    "duration_needed",
    "make_plan",
    "minimum_detectable",
    "paired_spread",
    "parse_change_ms",
    "parse_target",
    "rounds_needed",
]

#: rounds_needed gives up past this many rounds (a change that small is out of reach)
MAX_SEARCH = 10_000
_QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
_MODES = ("stream", "non_stream")
_CHANGE = re.compile(r"\s*\+?([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|us|µs|s)?\s*")
_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}


def minimum_detectable(sd: float, rounds: int, alpha: float, power: float) -> float:
    """Smallest true change ``rounds`` paired rounds detect with probability ``power``."""
    if rounds < 2:
        raise ValueError(f"a paired test needs at least 2 rounds, got {rounds}")
    if not (0.0 < alpha < 1.0 and 0.5 <= power < 1.0):
        raise ValueError(f"alpha must be in (0, 1) and power in [0.5, 1), got {alpha}, {power}")
    df = rounds - 1
    return (t_crit(alpha, df) + t_crit(2.0 * (1.0 - power), df)) * sd / math.sqrt(rounds)


def rounds_needed(sd: float, change: float, alpha: float, power: float) -> int | None:
    """Smallest k ≥ 2 with ``minimum_detectable(sd, k, …) ≤ change``; None past MAX_SEARCH."""
    if change <= 0:
        raise ValueError(f"the change to detect must be positive, got {change}")
    if sd <= 0:
        return 2
    # The normal approximation is a lower bound (t quantiles exceed z): start there,
    # so a small change costs a few steps, not thousands.
    z = t_crit(alpha, math.inf) + t_crit(2.0 * (1.0 - power), math.inf)
    k = max(2, math.floor((z * sd / change) ** 2))
    while k <= MAX_SEARCH:
        if minimum_detectable(sd, k, alpha, power) <= change:
            return k
        k += 1
    return None


def duration_needed(
    spread: Spread, duration_s: float, rounds: int, change: float, alpha: float, power: float
) -> float | None:
    """Run length at which ``rounds`` rounds detect ``change``; None: no length will.

    Model: ``sd²(D) = max(between − within, 0) + within · duration_s / D`` — the
    within-run variance falls with the samples a run collects, the excess of the
    between-round variance over it (the machine moving between runs) does not.
    """
    t = minimum_detectable(1.0, rounds, alpha, power)  # mde per unit of sd
    target_var = (change / t) ** 2
    excess = max(spread.between - spread.within, 0.0)
    if spread.within <= 0 or target_var <= excess:
        return None
    return duration_s * spread.within / (target_var - excess)


@dataclass(frozen=True, slots=True)
class Target:
    """What to detect: ``metric`` (e.g. ``overhead_ms``), quantile, mode, change in ms."""

    metric: str
    quantile: float
    mode: str  # "all" | "stream" | "non_stream"
    change_ms: float

    @property
    def name(self) -> str:
        q = next(k for k, v in _QUANTILES.items() if v == self.quantile)
        row = f"{self.metric}.{q}"
        return row if self.mode == "all" else f"{self.mode}.{row}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.name, "change_ms": self.change_ms}


def parse_change_ms(text: str, option: str = "--detect") -> float:
    """Milliseconds from ``"1ms"``, ``"+1.5ms"``, ``"500us"``, ``"0.002s"`` or ``"1"`` (ms)."""
    m = _CHANGE.fullmatch(text)
    if m is None:
        raise UsageError(f"{option}: expected a positive change like 1ms or 500us (got {text!r})")
    value = float(m.group(1)) * _TO_MS[m.group(2) or "ms"]
    if not value > 0 or not math.isfinite(value):
        raise UsageError(f"{option}: the change must be positive (got {text!r})")
    return value


def parse_target(row: str, change: str, option: str = "--detect-metric") -> Target:
    """A row ``[stream.|non_stream.]<metric>.<p50|p90|p99|p999>`` and a change in ms."""
    parts = row.strip().split(".")
    mode = parts[0] if parts and parts[0] in _MODES else "all"
    rest = parts[1:] if mode != "all" else parts
    if len(rest) != 2 or rest[0] not in BATCHED_METRICS or rest[1] not in _QUANTILES:
        raise UsageError(
            f"{option}: expected [stream.|non_stream.]<{'|'.join(BATCHED_METRICS)}>."
            f"<{'|'.join(_QUANTILES)}> (got {row!r})"
        )
    return Target(rest[0], _QUANTILES[rest[1]], mode, parse_change_ms(change))


@dataclass(frozen=True, slots=True)
class Spread:
    """One metric's per-round paired differences, as the paired compare sees them (ms²)."""

    rounds: int
    between: float  # sample variance of the per-round differences (0 with one round)
    within: float  # mean within-run variance of a round's difference
    mean_diff: float
    base: float  # mean base value of the quantile (ms): what --threshold is relative to

    @property
    def sd(self) -> float:
        """Per-round standard deviation the plan uses: √max(between, within)."""
        return math.sqrt(max(self.between, self.within))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sd": self.sd}


def _hist_name(target: Target) -> str:
    return target.metric if target.mode == "all" else f"{target.mode}.{target.metric}"


def paired_spread(
    bases: Sequence[Result], cands: Sequence[Result], target: Target
) -> Spread | None:
    """The spread of ``target``'s per-round differences; None when a run lacks it."""
    name = _hist_name(target)
    pairs = list(zip(bases, cands, strict=False))
    if not pairs or not all(name in r.histograms for pair in pairs for r in pair):
        return None
    diffs: list[float] = []
    within: list[float] = []
    base_values: list[float] = []
    for rb, rc in pairs:
        est = []
        for r in (rb, rc):
            h = decode(r.histograms[name])
            batches = [counts_of(decode(b)) for b in r.histogram_batches.get(name) or [] if b]
            value, se, n, _df = run_quantile(counts_of(h), batches, target.quantile,
                                             bucket_bounds(h))  # fmt: skip
            if n == 0:
                return None
            est.append((value / 1e3, se / 1e3))
        (vb, sb), (vc, sc) = est
        diffs.append(vc - vb)
        within.append(sb * sb + sc * sc)
        base_values.append(vb)
    between = float(np.var(diffs, ddof=1)) if len(diffs) > 1 else 0.0
    return Spread(len(diffs), between, float(np.mean(within)), float(np.mean(diffs)),
                  float(np.mean(base_values)))  # fmt: skip


@dataclass(frozen=True, slots=True)
class Plan:
    """How many rounds ``ab`` needs, from the spread it measured so far.

    ``rounds`` is what ab runs: the rounds needed, within [min_rounds, max_rounds];
    ``capped`` when the change is out of reach at max_rounds. ``mde_ms`` is the
    change detectable at ``power`` with the rounds measured (``spread.rounds``),
    ``mde_planned_ms`` with ``rounds``.
    """

    target: Target
    power: float
    alpha: float  # per-test two-sided level (Bonferroni)
    tests: int
    spread: Spread
    duration_s: float
    needed: int | None
    rounds: int
    capped: bool
    mde_ms: float | None
    mde_planned_ms: float
    duration_for_cap_s: float | None  # run length at which max_rounds would reach it
    below_threshold: bool  # the change is under --threshold % of the base: never a regression
    threshold_pct: float

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__slots__}
        d["target"] = self.target.to_dict()
        d["spread"] = self.spread.to_dict()
        return d

    def headline(self) -> str:
        """ "to detect +1 ms on overhead_ms.p99 at 90 % power: 8 rounds of 10 s"."""
        what = (
            f"+{self.target.change_ms:g} ms on {self.target.name} at {self.power * 100:g} % power"
        )
        head = f"to detect {what}: {self.needed} rounds of {self.duration_s:g} s"
        if self.needed is None:
            head = f"to detect {what}: more than {MAX_SEARCH} rounds of {self.duration_s:g} s"
        return head

    def notes(self) -> list[str]:
        """Why the plan is what it is, one line each (sd, α, caps, threshold)."""
        sp = self.spread
        lines = [
            f"per-round difference sd {sp.sd:.3g} ms over {sp.rounds} round(s) "
            f"(between {math.sqrt(sp.between):.3g}, within {math.sqrt(sp.within):.3g}); "
            f"α {self.alpha:.2g} per test (Bonferroni over {self.tests})"
        ]
        if self.capped:
            lines.append(
                f"capped at {self.rounds} rounds (--max-rounds): they detect "
                f"+{self.mde_planned_ms:.3g} ms"
                + (
                    f"; {self.rounds} rounds of {self.duration_for_cap_s:.0f} s would reach "
                    f"+{self.target.change_ms:g} ms"
                    if self.duration_for_cap_s is not None
                    else "; longer runs would not reach it (the spread is between rounds)"
                )
            )
        if self.below_threshold:
            lines.append(
                f"+{self.target.change_ms:g} ms is under --threshold {self.threshold_pct:g} % "
                f"of the base {sp.base:.3g} ms: compare will not call it a regression"
            )
        return lines


def make_plan(
    spread: Spread,
    target: Target,
    *,
    tests: int,
    duration_s: float,
    confidence: float = 0.95,
    power: float = 0.9,
    threshold_pct: float = 5.0,
    min_rounds: int = 2,
    max_rounds: int = 20,
) -> Plan:
    """The plan from ``spread`` (rounds measured so far) for ``target``.

    ``tests``: the Bonferroni count of the comparison (``Comparison.tests``).
    """
    if not 2 <= min_rounds <= max_rounds:
        raise ValueError(f"need 2 <= min_rounds <= max_rounds, got {min_rounds}, {max_rounds}")
    alpha = (1.0 - confidence) / max(tests, 1)
    needed = rounds_needed(spread.sd, target.change_ms, alpha, power)
    capped = needed is None or needed > max_rounds
    rounds = max_rounds if needed is None else min(max(needed, min_rounds), max_rounds)
    mde = minimum_detectable(spread.sd, spread.rounds, alpha, power) if spread.rounds > 1 else None
    cap_duration = (
        duration_needed(spread, duration_s, max_rounds, target.change_ms, alpha, power)
        if capped
        else None
    )
    below = target.change_ms < threshold_pct / 100.0 * spread.base
    return Plan(target, power, alpha, tests, spread, duration_s, needed, rounds, capped, mde,
                minimum_detectable(spread.sd, rounds, alpha, power), cap_duration, below,
                threshold_pct)  # fmt: skip
