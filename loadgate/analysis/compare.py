"""Statistical comparison of results: did the candidate get slower?

This module owns the verdict of ``loadgate compare`` (issue 5, docs/compare.md).
For every compared latency metric × mode × quantile it estimates the change
``cand − base`` with a confidence interval and says, plainly, "regression",
"improvement" or "no significant change". Error and integrity rates, upstream
amplification, gateway counters and the goodput ratio are compared too. It reads typed
:class:`~loadgate.result.model.Result` objects (files are loaded at the edge,
by the caller) and returns a :class:`Comparison`; the text views of it are
:mod:`loadgate.analysis.compare_render`, the estimators :mod:`loadgate.analysis.stats`.

Method, in short (the why is in docs/compare.md):

* Within one run, a quantile's sampling error comes from the stored HDR
  histogram by the distribution-free order-statistic interval.
* One run also drifts over its own length: the run's window is stored as 20
  time batches (``histogram_batches``), and the batch-means standard error
  replaces the order-statistic one when it is larger.
* With several runs per side, the side's variance is
  ``max(between-run variance, mean within-run variance) / k``.
* The difference uses Welch's t with Satterthwaite degrees of freedom, and the
  intervals are simultaneous (Bonferroni over every tested row), so the chance
  that an A/A comparison flags anything at all stays at most 1 − confidence.
* A row is a regression when the interval lies above zero **and** the change
  is at least ``threshold_pct`` of the base: significant and large enough to
  matter. Only regressions in gating rows set exit code 1.
* When both sides carry the same-run control group (``harness.control``), a
  significant latency change that the control group's own figure moved with
  (:mod:`loadgate.analysis.floor`: the same way, by at least half as much) is
  "machine changed", never a regression; the control figures are rows of their
  own ("harness floor"), informational.

Longer than the house's ~400 lines on purpose: quantile, rate and scalar rows
share one Bonferroni count and one verdict rule, and one file is where a reader
checks that they do.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from loadgate.analysis.floor import FLOOR_SHARE, control_p99, judge_against_floor
from loadgate.analysis.rows import (
    CHANGED,
    FLOOR,
    IMPROVEMENT,
    MACHINE_CHANGED,
    NO_CHANGE,
    NOT_TESTED,
    REGRESSION,
    Row,
)
from loadgate.analysis.stats import (
    MIN_TAIL,
    Counts,
    SideEstimate,
    combine_runs,
    proportion_difference,
    run_quantile,
    scalar_side,
    t_crit,
    t_sf2,
    welch,
)
from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode
from loadgate.histograms.recorder import BATCHED_METRICS
from loadgate.result.model import Result

__all__ = [
    "CHANGED",
    "COMPARED_METRICS",
    "FLOOR",
    "IMPROVEMENT",
    "MACHINE_CHANGED",
    "NOT_TESTED",
    "NO_CHANGE",
    "QUANTILES",
    "REGRESSION",
    "Comparison",
    "Row",
    "check_compatible",
    "compare_results",
]

COMPARED_METRICS = BATCHED_METRICS
QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
MODE_NAMES = ("all", "stream", "non_stream")
# Where things listen and which seeded sequence was drawn do not change the load.
_IGNORED_STUB_KEYS = frozenset({"host", "port", "seed"})
_IGNORED_LOAD_KEYS = frozenset({"seed"})


@dataclass(slots=True)
class Comparison:
    """Everything ``compare`` found; ``to_dict`` is the JSON output."""

    rows: list[Row]
    threshold_pct: float
    confidence: float
    tests: int  # rows the Bonferroni correction spans
    base_runs: int
    cand_runs: int
    warnings: list[str] = field(default_factory=list)
    method: str = (
        "order-statistic or batch-means CI per run; between-run variance across runs; Welch t"
    )
    #: each side's mean control-group overhead p99 (ms); None: that side has none
    control_p99: tuple[float | None, float | None] = (None, None)
    #: the share of a change the control group must explain to make it the machine's
    floor_share: float = FLOOR_SHARE
    #: inputs whose own verdict was ``invalid``: they prove nothing, so neither can this
    invalid_runs: int = 0

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.verdict == REGRESSION]

    @property
    def machine_changed(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == MACHINE_CHANGED]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == IMPROVEMENT]

    @property
    def exit_code(self) -> int:
        """3 when an input run was invalid (as ``ab``), else 1 on a regression, else 0."""
        if self.invalid_runs:
            return 3
        return 1 if self.regressions else 0

    @property
    def verdict(self) -> str:
        if self.regressions:
            return REGRESSION
        # An improvement beside figures the machine moved is no evidence about the gateway.
        if self.machine_changed:
            return MACHINE_CHANGED
        return IMPROVEMENT if self.improvements else NO_CHANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "loadgate.compare/1",
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "invalid_runs": self.invalid_runs,
            "threshold_pct": self.threshold_pct,
            "confidence": self.confidence,
            "simultaneous_tests": self.tests,
            "runs": {"base": self.base_runs, "cand": self.cand_runs},
            "method": self.method,
            "control_overhead_p99_ms": {
                "base": _r(self.control_p99[0]),
                "cand": _r(self.control_p99[1]),
            },
            "floor_share": self.floor_share,
            "warnings": list(self.warnings),
            "rows": [asdict(r) for r in self.rows],
        }


def _verdict(
    lo: float, hi: float, change_pct: float | None, threshold_pct: float, worse_up: bool | None
) -> str:
    if lo <= 0.0 <= hi:
        return NO_CHANGE
    if worse_up is None:
        return CHANGED
    up = lo > 0.0
    big = change_pct is None or abs(change_pct) >= threshold_pct
    if not big:
        return NO_CHANGE
    return REGRESSION if up == worse_up else IMPROVEMENT


def _pct(base: float, change: float) -> float | None:
    return 100.0 * change / base if base else None


def _r(x: float | None, nd: int = 4) -> float | None:
    if x is None or math.isnan(x):
        return None
    return round(x, nd)


# --------------------------------------------------------------------- compatibility


def _settings(result: Result) -> dict[str, Any]:
    prof = result.profile
    stub = {k: v for k, v in (prof.get("stub") or {}).items() if k not in _IGNORED_STUB_KEYS}
    load = {k: v for k, v in (prof.get("load") or {}).items() if k not in _IGNORED_LOAD_KEYS}
    return {"load": load, "stub": stub}


def _diff_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} vs {vb!r}")
    return out


def check_compatible(results: Sequence[Result], labels: Sequence[str]) -> list[str]:
    """Warnings for comparable-but-suspicious inputs; UsageError for incomparable.

    Different machines: a warning (a team may knowingly compare a laptop with CI).
    Different load or stub settings (``profile.load`` except seed,
    ``profile.stub`` except host/port/seed): refused — a different offered load
    changes every latency, so the comparison would measure the profile, not the
    gateway. A different profile *name* with identical settings is only a warning.
    """
    warnings: list[str] = []
    for r, lab in zip(results, labels, strict=True):
        if r.verdict == "invalid":
            why = "; ".join(r.reasons) or "harness limits exceeded"
            warnings.append(f"{lab} is an invalid run ({why}): its figures are unreliable")
    machines = {str(r.environment.machine_id) for r in results}
    if len(machines) > 1:
        warnings.append(
            f"results come from {len(machines)} different machines "
            f"({', '.join(sorted(machines))}): differences may be the machines, not the code"
        )
    ref = _settings(results[0])
    for r, lab in zip(results[1:], labels[1:], strict=True):
        diff = _diff_keys(ref, _settings(r))
        if diff:
            raise UsageError(
                f"{lab}: profile settings differ from {labels[0]} ({'; '.join(diff[:3])}); "
                "results under different load are not comparable"
            )
    names = {str(r.profile.get("name")) for r in results}
    if len(names) > 1:
        warnings.append(
            f"profile names differ ({', '.join(sorted(names))}) but load and stub settings "
            "are identical: compared anyway"
        )
    return warnings


# --------------------------------------------------------------------- quantiles


_Pending = tuple[Row, SideEstimate, SideEstimate, "SideEstimate | None"]


def _hist_name(metric: str, mode: str) -> str:
    return metric if mode == "all" else f"{mode}.{metric}"


def _batches(result: Result, name: str) -> list[Counts]:
    """A run's time batches of one histogram (empty list: none stored, older result)."""
    return [counts_of(decode(b)) for b in result.histogram_batches.get(name) or [] if b]


def _side(estimates: Sequence[tuple[float, float, int, float]]) -> SideEstimate:
    return combine_runs(
        [e[0] / 1e3 for e in estimates],
        [e[1] / 1e3 for e in estimates],
        [e[2] for e in estimates],
        [e[3] for e in estimates],
    )


def _quantile_rows(
    bases: Sequence[Result], cands: Sequence[Result], paired: bool
) -> list[_Pending]:
    out: list[_Pending] = []
    for metric in COMPARED_METRICS:
        all_totals: list[int] | None = None
        for mode in MODE_NAMES:
            name = _hist_name(metric, mode)
            if not all(name in r.histograms for r in (*bases, *cands)):
                continue
            hists_b = [decode(r.histograms[name]) for r in bases]
            hists_c = [decode(r.histograms[name]) for r in cands]
            totals = [h.get_total_count() for h in (*hists_b, *hists_c)]
            if mode == "all":
                all_totals = totals
            elif totals == all_totals:
                # This mode holds every sample (ttft_* exist only for streams): the same
                # figure again would be shown twice and double-count in Bonferroni's m.
                continue
            bounds = bucket_bounds(hists_b[0])
            cb = [counts_of(h) for h in hists_b]
            cc = [counts_of(h) for h in hists_c]
            bb = [_batches(r, name) for r in bases]
            bc = [_batches(r, name) for r in cands]
            for qname, q in QUANTILES:
                eb = [run_quantile(c, bt, q, bounds) for c, bt in zip(cb, bb, strict=True)]
                ec = [run_quantile(c, bt, q, bounds) for c, bt in zip(cc, bc, strict=True)]
                sb, sc = _side(eb), _side(ec)
                sd = None
                if paired:
                    # Round i's two runs share that moment's drift: test the differences.
                    sd = combine_runs(
                        [(y[0] - x[0]) / 1e3 for x, y in zip(eb, ec, strict=True)],
                        [math.hypot(x[1], y[1]) / 1e3 for x, y in zip(eb, ec, strict=True)],
                        [min(x[2], y[2]) for x, y in zip(eb, ec, strict=True)],
                        [x[3] + y[3] for x, y in zip(eb, ec, strict=True)],
                    )
                p = q / 100.0
                short = min(sb.min_n, sc.min_n)
                testable = short * min(p, 1.0 - p) >= MIN_TAIL
                row = Row(
                    "quantile",
                    f"{metric}.{qname}",
                    mode,
                    sb.estimate,
                    sc.estimate,
                    None,
                    None,
                    None,
                    None,
                    None,
                    NO_CHANGE if testable else NOT_TESTED,
                    gating=testable,
                    note=""
                    if testable
                    else f"{short} samples in the smallest run: fewer than {MIN_TAIL} beyond "
                    f"p{q:g}; run longer to test this quantile",
                )
                out.append((row, sb, sc, sd))
    return out


def _finish_quantile(
    row: Row,
    sb: SideEstimate,
    sc: SideEstimate,
    sd: SideEstimate | None,
    alpha: float,
    threshold: float,
) -> Row:
    if sd is None:
        d, se, df = welch(sb, sc)
    else:
        d, se, df = sd.estimate, math.sqrt(sd.var), sd.df
    if not row.gating:
        pct = _pct(sb.estimate, d)
        return Row(row.kind, row.name, row.mode, _r(sb.estimate), _r(sc.estimate), _r(d),
                   _r(pct, 2), None, None, None, NOT_TESTED, False, row.note)  # fmt: skip
    p = t_sf2(d / se, df) if se > 0 else (0.0 if d else 1.0)
    half = t_crit(alpha, df) * se
    pct = _pct(sb.estimate, d)
    verdict = _verdict(d - half, d + half, pct, threshold, worse_up=True)
    note = ""
    if verdict == NO_CHANGE and not (d - half <= 0.0 <= d + half):
        note = f"significant but {pct:+.1f} % is within the ±{threshold:g} % threshold"
    return Row(
        row.kind,
        row.name,
        row.mode,
        _r(sb.estimate),
        _r(sc.estimate),
        _r(d),
        _r(pct, 2),
        _r(d - half),
        _r(d + half),
        _r(p, 6),
        verdict,
        row.gating,
        note,
    )


# --------------------------------------------------------------------- rates, scalars

#: (row name, the run's (events, trials)) of the compared proportions
_RATES: tuple[tuple[str, Callable[[Result], tuple[int, int]]], ...] = (
    ("requests.error_rate", lambda r: (r.requests.failed, r.requests.sent)),
    ("integrity.violation_rate", lambda r: (r.integrity.violations, r.integrity.checked)),
)


def _rate_row(
    name: str,
    counts: Callable[[Result], tuple[int, int]],
    bases: Sequence[Result],
    cands: Sequence[Result],
    alpha: float,
    *,
    worse_up: bool = True,
    gating: bool = True,
    why: str = "",
) -> Row | None:
    """Difference of two proportions, summed over each side's runs."""
    xs, ns = [], []
    for side in (bases, cands):
        pairs = [counts(r) for r in side]
        xs.append(float(sum(x for x, _ in pairs)))
        ns.append(float(sum(n for _, n in pairs)))
    if min(ns) <= 0:
        return None
    pd = proportion_difference(xs[0], ns[0], xs[1], ns[1], alpha)
    verdict = _verdict(pd.ci_low, pd.ci_high, None, 0.0, worse_up=worse_up)
    note = f"{int(xs[0])}/{int(ns[0])} vs {int(xs[1])}/{int(ns[1])}" + why
    change = pd.cand - pd.base
    return Row(
        "rate",
        name,
        "all",
        _r(pd.base, 6),
        _r(pd.cand, 6),
        _r(change, 6),
        _r(_pct(pd.base, change), 2),
        _r(pd.ci_low, 6),
        _r(pd.ci_high, 6),
        _r(pd.p_value, 6),
        verdict,
        gating,
        note,
    )


#: Why the goodput row informs and never gates (docs/goodput.md, "compare").
_GOODPUT_WHY = (
    "; informational: requests in one slow spike miss together, not as independent "
    "trials, so this interval is too narrow; the latency rows gate"
)


def _goodput_sides(bases: Sequence[Result], cands: Sequence[Result]) -> tuple[bool, str | None]:
    """``(compare goodput?, warning)``: every run must have judged the same [slo] bounds."""
    runs = [*bases, *cands]
    configured = [r.goodput for r in runs if r.goodput is not None]
    if not configured:
        return False, None
    if len(configured) < len(runs):
        return False, "goodput not compared: not every run had [slo] bounds"
    if any(g.slo != configured[0].slo for g in configured):
        return False, "goodput not compared: the runs judged different [slo] bounds"
    return True, None


def _goodput_counts(r: Result) -> tuple[int, int]:
    g = r.goodput
    return (g.good, g.requests) if g is not None else (0, 0)


def _scalar_row(
    name: str,
    values_b: list[float],
    values_c: list[float],
    alpha: float,
    threshold: float,
    worse_up: bool | None,
) -> Row:
    mb, mc = float(np.mean(values_b)), float(np.mean(values_c))
    d = mc - mb
    pct = _pct(mb, d)
    if len(values_b) < 2 or len(values_c) < 2:
        note = "one run per side: no run-to-run variance to test against"
        return Row("scalar", name, "all", _r(mb), _r(mc), _r(d), _r(pct, 2), None, None, None,
                   NOT_TESTED, False, note)  # fmt: skip
    d, se, df = welch(scalar_side(values_b), scalar_side(values_c))
    if se == 0:
        verdict = NO_CHANGE if d == 0 else (CHANGED if worse_up is None else NOT_TESTED)
        return Row("scalar", name, "all", _r(mb), _r(mc), _r(d), _r(pct, 2), None, None, None,
                   verdict, False, "no variance in either side")  # fmt: skip
    half = t_crit(alpha, df) * se
    verdict = _verdict(d - half, d + half, pct, threshold, worse_up)
    return Row("scalar", name, "all", _r(mb), _r(mc), _r(d), _r(pct, 2), _r(d - half),
               _r(d + half), _r(t_sf2(d / se, df), 6), verdict, False)  # fmt: skip


_Scalar = tuple[str, list[float], list[float], bool | None]
_Getter = Callable[[Result], float | None]


def _per_request(selector: str) -> _Getter:
    # Selectors contain dots and braces: looked up whole, never as a dotted path.
    return lambda r: r.gateway.counters_per_request.get(selector)


def _numbers(values: Sequence[float | None]) -> list[float] | None:
    out = [float(v) for v in values if isinstance(v, int | float)]
    return out if len(out) == len(values) else None


def _scalars(bases: Sequence[Result], cands: Sequence[Result]) -> list[_Scalar]:
    """Per-run scalars present in every run: (name, base values, cand values, worse up?)."""
    getters: list[tuple[str, _Getter, bool | None]] = [
        ("requests.throughput_rps", lambda r: r.requests.throughput_rps, False),
        ("upstream.calls_per_request", lambda r: r.upstream.calls_per_request, True),
        ("gateway.auth_cache_hit_rate", lambda r: r.gateway.auth_cache_hit_rate, False),
    ]
    selectors = sorted({s for r in (*bases, *cands) for s in r.gateway.counters_per_request})
    getters += [(f"gateway.counters_per_request.{s}", _per_request(s), None) for s in selectors]
    out: list[_Scalar] = []
    for name, get, worse_up in getters:
        vb, vc = _numbers([get(r) for r in bases]), _numbers([get(r) for r in cands])
        if vb is not None and vc is not None:
            out.append((name, vb, vc, worse_up))
    return out


# --------------------------------------------------------------------- the comparison


def compare_results(
    bases: Sequence[Result],
    cands: Sequence[Result],
    threshold_pct: float = 5.0,
    confidence: float = 0.95,
    labels: tuple[Sequence[str], Sequence[str]] | None = None,
    paired: bool = False,
) -> Comparison:
    """Compare results (one or more runs per side) and decide.

    ``labels`` name the runs in warnings and errors (the CLI passes file paths).
    ``paired``: bases[i] and cands[i] ran back to back (``loadgate ab``); the
    per-round differences are tested, which cancels drift shared by a round.
    """
    for r in (*bases, *cands):
        if not isinstance(r, Result):
            raise TypeError(f"compare_results takes Result objects, not {type(r).__name__}")
    if paired and len(bases) != len(cands):
        raise UsageError(f"paired comparison needs as many base as candidate results "
                         f"({len(bases)} vs {len(cands)})")  # fmt: skip
    if not bases or not cands:
        raise UsageError("compare needs at least one result on each side")
    if not 0.5 <= confidence < 1.0:
        raise UsageError(f"confidence must be in [0.5, 1), got {confidence}")
    if threshold_pct < 0:
        raise UsageError(f"threshold must be >= 0, got {threshold_pct}")
    lb = list(labels[0]) if labels else [f"base run {i + 1}" for i in range(len(bases))]
    lc = list(labels[1]) if labels else [f"cand run {i + 1}" for i in range(len(cands))]
    warnings = check_compatible([*bases, *cands], [*lb, *lc])

    pending = _quantile_rows(bases, cands, paired)
    scalars = _scalars(bases, cands)
    with_goodput, goodput_warning = _goodput_sides(bases, cands)
    if goodput_warning is not None:
        warnings.append(goodput_warning)
    tests = (
        sum(1 for r, *_ in pending if r.gating)
        + len(_RATES)
        + with_goodput
        + sum(1 for _, b, c, _ in scalars if len(b) > 1 and len(c) > 1)
    )
    alpha = (1.0 - confidence) / max(tests, 1)

    rows = [_finish_quantile(*p, alpha, threshold_pct) for p in pending]
    for name, counts in _RATES:
        row = _rate_row(name, counts, bases, cands, alpha)
        if row is not None:
            rows.append(row)
    if with_goodput:
        row = _rate_row(
            "goodput.ratio",
            _goodput_counts,
            bases,
            cands,
            alpha,
            worse_up=False,
            gating=False,
            why=_GOODPUT_WHY,
        )
        if row is not None:
            rows.append(row)
    rows += [_scalar_row(n, b, c, alpha, threshold_pct, w) for n, b, c, w in scalars]
    rows, floor_warnings = judge_against_floor(rows, bases, cands, COMPARED_METRICS, QUANTILES)
    warnings += floor_warnings
    if not pending:
        warnings.append("no latency histograms present in both sides: nothing to compare")
    if len(bases) == 1 and len(cands) == 1 and pending:
        batched = all(r.histogram_batches for r in (*bases, *cands))
        covers = (
            "sampling error and drift within each run, not an offset between runs"
            if batched
            else "sampling error only, not run-to-run drift (no time batches stored)"
        )
        advice = (
            "run more rounds (`loadgate ab --rounds 5`)"
            if paired
            else "use several runs per side or `loadgate ab`"
        )
        warnings.append(
            f"one run per side: intervals cover {covers}; {advice} before trusting a small change"
        )
    c = Comparison(rows, threshold_pct, confidence, tests, len(bases), len(cands), warnings)
    c.control_p99 = (control_p99(bases), control_p99(cands))
    c.invalid_runs = sum(1 for r in (*bases, *cands) if r.verdict == "invalid")
    if paired:
        c.method = "order-statistic or batch-means CI per run; paired per-round differences; t"
    return c
