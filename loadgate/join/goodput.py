"""Per-request SLOs (profile ``[slo]``): did a joined request meet each bound? (goodput)

Goodput is decided per request, at join time, where each request's own figures
are known; a histogram of the run cannot tell which requests met *all* bounds.
The engine hands every measured gateway request to :meth:`GoodputCounts.add`
(:class:`RequestFigures` from the join's decomposition); the counts are plain
integers, so several load processes merge them losslessly by adding
(:mod:`loadgate.load.outcome`).

The definitions follow the established LLM-serving practice (docs/goodput.md):

* a request is *good* when it completed without error and without an integrity
  violation, and met every configured bound (``value <= bound``);
* ``itl_ms`` is compared with the request's **mean** inter-token latency, (last
  content delta − first) / (deltas − 1): vLLM's ``--goodput tpot:`` and AIPerf's
  ``--goodput inter_token_latency:`` both judge this per-request mean (DistServe's
  TPOT SLO), not a request's max or p99 gap;
* a bound that does not apply to a request is met: a non-stream request has no
  TTFT or ITL, a stream of one delta has no ITL, a request the stub never saw has
  no overhead figure (``upstream.unseen`` counts those). Each is counted under
  ``not_applicable``, so the share judged on a figure is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SLO_NAMES", "GoodputCounts", "RequestFigures", "SloBounds", "mean_gap_ns"]

#: The bounds of ``[slo]``, in the order outputs list them.
SLO_NAMES = ("ttft_ms", "itl_ms", "e2e_ms", "overhead_ms")


@dataclass(frozen=True, slots=True)
class SloBounds:
    """The profile's bounds in ms (None: that SLO is not set)."""

    ttft_ms: float | None = None
    itl_ms: float | None = None
    e2e_ms: float | None = None
    overhead_ms: float | None = None

    @property
    def configured(self) -> bool:
        return any(getattr(self, n) is not None for n in SLO_NAMES)

    def items(self) -> list[tuple[str, float]]:
        """``(name, bound ms)`` of the bounds that are set."""
        return [(n, b) for n in SLO_NAMES if (b := getattr(self, n)) is not None]


@dataclass(frozen=True, slots=True)
class RequestFigures:
    """One request's figures in ns; None where the figure does not apply to it."""

    ttft_ns: int | None = None
    itl_ns: float | None = None
    e2e_ns: int | None = None
    overhead_ns: int | None = None


def mean_gap_ns(times_ns: list[int]) -> float | None:
    """Mean gap between consecutive content-delta arrivals (None with fewer than two)."""
    if len(times_ns) < 2:
        return None
    return (times_ns[-1] - times_ns[0]) / (len(times_ns) - 1)


@dataclass(slots=True)
class GoodputCounts:
    """Counts over the measured requests of one load process (merge: add)."""

    #: measured gateway requests judged (every one, failed ones too)
    judged: int = 0
    #: of them, completed without error or violation and within every bound
    good: int = 0
    #: failed or violated integrity: never good, whatever their latencies
    failed: int = 0
    #: SLO name → completed requests whose figure exceeded the bound
    missed: dict[str, int] = field(default_factory=dict)
    #: SLO name → completed requests without that figure (the bound counts as met)
    not_applicable: dict[str, int] = field(default_factory=dict)

    def add(self, bounds: SloBounds, figures: RequestFigures | None) -> bool:
        """Judge one request (``figures`` None: it failed); True when it was good."""
        self.judged += 1
        if figures is None:
            self.failed += 1
            return False
        good = True
        for name, bound_ms in bounds.items():
            value = getattr(figures, name.removesuffix("_ms") + "_ns")
            if value is None:
                self.not_applicable[name] = self.not_applicable.get(name, 0) + 1
            elif value > bound_ms * 1e6:
                self.missed[name] = self.missed.get(name, 0) + 1
                good = False
        self.good += good
        return good
