"""Statistical comparison of result files: did the candidate get slower?

This module owns the verdict of ``loadgate compare`` (issue 5, docs/compare.md).
For every compared latency metric × mode × quantile it estimates the change
``cand − base`` with a confidence interval and says, plainly, "regression",
"improvement" or "no significant change". Error and integrity rates, upstream
amplification and gateway counters are compared too.

Method, in short (the why is in docs/compare.md):

* Within one run, a quantile's sampling error comes from the stored HDR
  histogram by the distribution-free order-statistic interval: the q-quantile
  of n samples lies between the order statistics of rank ``nq ∓ z·√(nq(1−q))``;
  that interval's width gives the standard error. Deterministic, no RNG, cheap.
* One run also drifts over its own length (a noisy neighbour comes and goes):
  the run's window is stored as 20 time batches (``histogram_batches``), and
  the batch-means standard error — the spread of the per-batch quantiles over
  √B, with B − 1 degrees of freedom — replaces the order-statistic one when it
  is larger. Neighbouring batches are merged until each holds ``MIN_TAIL``
  samples beyond the quantile; with fewer than ``MIN_BATCHES`` left, the
  order-statistic error stands alone.
* With several runs per side, run-to-run drift dominates on shared machines:
  the side's estimate is the mean of the per-run quantiles and its variance is
  ``max(between-run variance, mean within-run variance) / k`` (method of
  moments: the between-run spread already contains the within-run noise and
  cannot honestly be smaller than it), with k − 1 degrees of freedom.
* The difference uses Welch's t with Satterthwaite degrees of freedom, and the
  intervals are simultaneous (Bonferroni over every tested row), so the chance
  that an A/A comparison flags anything at all stays at most 1 − confidence.
* A row is a regression when the interval lies above zero **and** the change
  is at least ``threshold_pct`` of the base: significant and large enough to
  matter. Only regressions in gating rows set exit code 1.
"""

from __future__ import annotations

import io
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from loadgate.errors import UsageError
from loadgate.histograms.hdr import bucket_bounds, counts_of, decode, percentile_us
from loadgate.histograms.recorder import BATCHED_METRICS
from loadgate.result.legacy import as_dict, dig

__all__ = [
    "COMPARED_METRICS",
    "QUANTILES",
    "Comparison",
    "Row",
    "check_compatible",
    "compare_results",
    "load_results",
    "main",
    "quantile_with_se",
    "render",
]

COMPARED_METRICS = BATCHED_METRICS
QUANTILES = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p999", 99.9))
MODE_NAMES = ("all", "stream", "non_stream")
_ORDER_Z = 1.959964  # rank window of the order-statistic interval (95 %)
# Samples a run needs beyond a quantile (and below it) for the order-statistic
# interval to fit inside the data; fewer and the tail is one or two values.
MIN_TAIL = 10
# Batch means needs a few batches for its variance to mean anything.
MIN_BATCHES = 5
# Where things listen and which seeded sequence was drawn do not change the load.
_IGNORED_STUB_KEYS = frozenset({"host", "port", "seed"})
_IGNORED_LOAD_KEYS = frozenset({"seed"})

REGRESSION = "regression"
IMPROVEMENT = "improvement"
NO_CHANGE = "no significant change"
CHANGED = "significant change"  # direction has no better/worse (raw counters)
NOT_TESTED = "not tested"

Counts = npt.NDArray[np.uint64]


# --------------------------------------------------------------------- t distribution


def _betacf(a: float, b: float, x: float) -> float:
    # Lentz's continued fraction for the incomplete beta function.
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(ln + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| ≥ |t|) of Student's t (df = inf: normal)."""
    t = abs(t)
    if math.isinf(t):
        return 0.0
    if math.isinf(df):
        return 2.0 * (1.0 - NormalDist().cdf(t))
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def t_crit(two_sided_alpha: float, df: float) -> float:
    """The t value whose two-sided tail probability is ``two_sided_alpha``."""
    if math.isinf(df):
        return NormalDist().inv_cdf(1.0 - two_sided_alpha / 2.0)
    lo, hi = 0.0, 1.0
    while t_sf2(hi, df) > two_sided_alpha:
        hi *= 2.0
    for _ in range(100):
        mid = (lo + hi) / 2.0
        if t_sf2(mid, df) > two_sided_alpha:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


# --------------------------------------------------------------------- estimation


def _value_at_rank(cum: npt.NDArray[np.uint64], vals: npt.NDArray[np.float64], rank: int) -> float:
    return float(vals[int(np.searchsorted(cum, rank, side="left"))])


def quantile_with_se(counts: Counts, q: float, bounds: Any) -> tuple[float, float, int]:
    """(quantile µs, standard error µs, n) of one histogram's bucket counts.

    The quantile follows HdrHistogram's rule (highest equivalent value of the
    bucket holding rank ``max(1, round(qn))``). The standard error is the width
    of the order-statistic interval ``[x(r−), x(r+)]``, r± = nq ∓ z√(nq(1−q)),
    divided by 2z — its coverage is exact for any continuous distribution, so no
    shape is assumed. It is floored at half a bucket: both sides share the bucket
    grid, so a one-bucket step is the smallest difference the data can show.
    """
    lo, hi, mid = bounds
    cum = np.cumsum(counts)
    n = int(cum[-1]) if cum.size else 0
    if n == 0:
        return float("nan"), float("nan"), 0
    p = q / 100.0
    rank = max(int(p * n + 0.5), 1)
    idx = int(np.searchsorted(cum, rank, side="left"))
    value = float(hi[idx])
    spread = _ORDER_Z * math.sqrt(n * p * (1.0 - p))
    r_lo = min(max(math.floor(n * p - spread), 1), n)
    r_hi = min(max(math.ceil(n * p + spread), 1), n)
    width = _value_at_rank(cum, mid, r_hi) - _value_at_rank(cum, mid, r_lo)
    se = max(width / (2.0 * _ORDER_Z), (float(hi[idx]) - float(lo[idx]) + 1.0) / 2.0)
    return value, se, n


def batch_means_se(batches: Sequence[Counts], q: float, bounds: Any) -> tuple[float, int] | None:
    """(standard error µs, batches used) of a run's q-quantile from its time batches.

    Neighbouring batches are merged into groups until each group can hold
    ``MIN_TAIL`` samples beyond the quantile; None when fewer than
    ``MIN_BATCHES`` groups remain (the run is too short to see its own drift).
    """
    p = q / 100.0
    sizes = [int(c.sum()) for c in batches]
    n = sum(sizes)
    groups = min(len(batches), int(n * min(p, 1.0 - p)) // MIN_TAIL)
    if groups < MIN_BATCHES:
        return None
    _lo, hi, _mid = bounds
    values = []
    for idx in np.array_split(np.arange(len(batches)), groups):
        merged = np.sum([batches[i] for i in idx], axis=0)
        if merged.sum() * min(p, 1.0 - p) >= 1.0:  # a group with (almost) nothing: skip
            values.append(percentile_us(merged, hi, q))
    if len(values) < MIN_BATCHES:
        return None
    return float(np.std(values, ddof=1)) / math.sqrt(len(values)), len(values)


@dataclass(frozen=True, slots=True)
class _Side:
    estimate: float
    var: float
    df: float
    runs: int
    n: int
    min_n: int  # smallest run: decides whether a tail quantile is estimable


def _combine(
    values: Sequence[float],
    ses: Sequence[float],
    ns: Sequence[int],
    dfs: Sequence[float] | None = None,
) -> _Side:
    """One side's estimate from its runs; ``dfs``: each run's own degrees of freedom
    (inf for the order-statistic error, B − 1 for batch means)."""
    k = len(values)
    v = np.asarray(values, dtype=np.float64)
    within = float(np.mean(np.square(ses)))
    within_df = math.inf if dfs is None or any(map(math.isinf, dfs)) else float(sum(dfs))
    if k == 1:
        return _Side(float(v[0]), within, within_df, 1, int(ns[0]), int(ns[0]))
    between = float(np.var(v, ddof=1))
    if between > within:
        return _Side(float(v.mean()), between / k, float(k - 1), k, int(sum(ns)), min(ns))
    # Runs agree better than sampling alone predicts: within-run error is the floor.
    return _Side(float(v.mean()), within / k, within_df, k, int(sum(ns)), min(ns))


def _welch(b: _Side, c: _Side) -> tuple[float, float, float]:
    """(difference, its standard error, Satterthwaite df)."""
    d = c.estimate - b.estimate
    var = b.var + c.var
    se = math.sqrt(var)
    terms = [x.var**2 / x.df for x in (b, c) if not math.isinf(x.df) and x.var > 0]
    df = var**2 / sum(terms) if terms and var > 0 else math.inf
    return d, se, df


# --------------------------------------------------------------------- rows


@dataclass(frozen=True, slots=True)
class Row:
    """One compared figure. Values in the figure's unit (ms for latencies)."""

    kind: str  # "quantile" | "rate" | "scalar"
    name: str  # "overhead_ms.p99", "requests.error_rate", ...
    mode: str  # "all" | "stream" | "non_stream"
    base: float | None
    cand: float | None
    change: float | None  # cand − base
    change_pct: float | None  # relative to base, in %
    ci_low: float | None  # simultaneous interval for the change
    ci_high: float | None
    p_value: float | None  # unadjusted two-sided
    verdict: str
    gating: bool  # a regression here makes the exit code 1
    note: str = ""


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

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.gating and r.verdict == REGRESSION]

    @property
    def improvements(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == IMPROVEMENT]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    @property
    def verdict(self) -> str:
        if self.regressions:
            return REGRESSION
        return IMPROVEMENT if self.improvements else NO_CHANGE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "loadgate.compare/1",
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "threshold_pct": self.threshold_pct,
            "confidence": self.confidence,
            "simultaneous_tests": self.tests,
            "runs": {"base": self.base_runs, "cand": self.cand_runs},
            "method": self.method,
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


# --------------------------------------------------------------------- inputs


def _get(d: Any, path: str) -> Any:
    return dig(d, *path.split("."))


def _hist_name(metric: str, mode: str) -> str:
    return metric if mode == "all" else f"{mode}.{metric}"


def _label(labels: Sequence[str] | None, side: str, i: int) -> str:
    return labels[i] if labels is not None else f"{side} run {i + 1}"


def _settings(result: dict[str, Any]) -> dict[str, Any]:
    prof = result.get("profile") or {}
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


def check_compatible(results: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[str]:
    """Warnings for comparable-but-suspicious inputs; UsageError for incomparable.

    Different machines: a warning (a team may knowingly compare a laptop with CI).
    Different load or stub settings (``profile.load`` except seed,
    ``profile.stub`` except host/port/seed): refused — a different offered load
    changes every latency, so the comparison would measure the profile, not the
    gateway. A different
    profile *name* with identical settings is only a warning.
    """
    warnings: list[str] = []
    for r, lab in zip(results, labels, strict=True):
        schema = r.get("schema")
        if not isinstance(schema, str) or not schema.startswith("loadgate.result/"):
            raise UsageError(f"{lab}: key 'schema': not a loadgate result ({schema!r})")
        if r.get("verdict") == "invalid":
            why = "; ".join(r.get("reasons") or []) or "harness limits exceeded"
            warnings.append(f"{lab} is an invalid run ({why}): its figures are unreliable")
    machines = {str(_get(r, "environment.machine_id")) for r in results}
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
    names = {str(_get(r, "profile.name")) for r in results}
    if len(names) > 1:
        warnings.append(
            f"profile names differ ({', '.join(sorted(names))}) but load and stub settings "
            "are identical: compared anyway"
        )
    return warnings


# --------------------------------------------------------------------- comparison


_Pending = tuple[Row, _Side, _Side, "_Side | None"]


def _batches(result: dict[str, Any], name: str) -> list[Counts]:
    """A run's time batches of one histogram (empty list: none stored, older result)."""
    stored = (_get(result, "histogram_batches") or {}).get(name) or []
    return [counts_of(decode(b)) for b in stored if b]


def _run_quantile(
    counts: Counts, batches: Sequence[Counts], q: float, bounds: Any
) -> tuple[float, float, int, float]:
    """(quantile µs, standard error µs, n, degrees of freedom) of one run."""
    value, se, n = quantile_with_se(counts, q, bounds)
    bm = batch_means_se(batches, q, bounds) if batches else None
    if bm is not None and bm[0] > se:
        return value, bm[0], n, float(bm[1] - 1)
    return value, se, n, math.inf


def _quantile_rows(
    base: Sequence[dict[str, Any]],
    cand: Sequence[dict[str, Any]],
    paired: bool,
) -> list[_Pending]:
    out: list[_Pending] = []
    for metric in COMPARED_METRICS:
        all_totals: list[int] | None = None
        for mode in MODE_NAMES:
            name = _hist_name(metric, mode)
            hb = [_get(r, "histograms") or {} for r in base]
            hc = [_get(r, "histograms") or {} for r in cand]
            if not all(name in h for h in hb) or not all(name in h for h in hc):
                continue
            hists_b = [decode(h[name]) for h in hb]
            hists_c = [decode(h[name]) for h in hc]
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
            bb = [_batches(r, name) for r in base]
            bc = [_batches(r, name) for r in cand]
            for qname, q in QUANTILES:
                eb = [_run_quantile(c, bt, q, bounds) for c, bt in zip(cb, bb, strict=True)]
                ec = [_run_quantile(c, bt, q, bounds) for c, bt in zip(cc, bc, strict=True)]
                sb = _combine(
                    [e[0] / 1e3 for e in eb],
                    [e[1] / 1e3 for e in eb],
                    [e[2] for e in eb],
                    [e[3] for e in eb],
                )
                sc = _combine(
                    [e[0] / 1e3 for e in ec],
                    [e[1] / 1e3 for e in ec],
                    [e[2] for e in ec],
                    [e[3] for e in ec],
                )
                sd = None
                if paired:
                    # Round i's two runs share that moment's drift: test the differences.
                    sd = _combine(
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
    row: Row, sb: _Side, sc: _Side, sd: _Side | None, alpha: float, threshold: float
) -> Row:
    if sd is None:
        d, se, df = _welch(sb, sc)
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


def _rate_row(
    name: str,
    num: str,
    den: str,
    base: Sequence[dict[str, Any]],
    cand: Sequence[dict[str, Any]],
    alpha: float,
) -> Row | None:
    """Difference of two proportions, Agresti–Caffo interval (sound at 0 events)."""
    xs, ns = [], []
    for side in (base, cand):
        x = [_get(r, num) for r in side]
        n = [_get(r, den) for r in side]
        if any(not isinstance(v, int | float) for v in x + n):
            return None
        xs.append(float(sum(x)))
        ns.append(float(sum(n)))
    if min(ns) <= 0:
        return None
    pb, pc = xs[0] / ns[0], xs[1] / ns[1]
    tb, tc = (xs[0] + 1) / (ns[0] + 2), (xs[1] + 1) / (ns[1] + 2)
    se = math.sqrt(tb * (1 - tb) / (ns[0] + 2) + tc * (1 - tc) / (ns[1] + 2))
    d_adj = tc - tb
    z = NormalDist().inv_cdf(1 - alpha / 2)
    lo, hi = d_adj - z * se, d_adj + z * se
    p = t_sf2(d_adj / se, math.inf) if se > 0 else 1.0
    verdict = _verdict(lo, hi, None, 0.0, worse_up=True)
    note = f"{int(xs[0])}/{int(ns[0])} vs {int(xs[1])}/{int(ns[1])}"
    return Row(
        "rate",
        name,
        "all",
        _r(pb, 6),
        _r(pc, 6),
        _r(pc - pb, 6),
        _r(_pct(pb, pc - pb), 2),
        _r(lo, 6),
        _r(hi, 6),
        _r(p, 6),
        verdict,
        True,
        note,
    )


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
    vb = float(np.var(values_b, ddof=1)) / len(values_b)
    vc = float(np.var(values_c, ddof=1)) / len(values_c)
    sb = _Side(mb, vb, float(len(values_b) - 1), len(values_b), len(values_b), 1)
    sc = _Side(mc, vc, float(len(values_c) - 1), len(values_c), len(values_c), 1)
    d, se, df = _welch(sb, sc)
    if se == 0:
        verdict = NO_CHANGE if d == 0 else (CHANGED if worse_up is None else NOT_TESTED)
        return Row("scalar", name, "all", _r(mb), _r(mc), _r(d), _r(pct, 2), None, None, None,
                   verdict, False, "no variance in either side")  # fmt: skip
    half = t_crit(alpha, df) * se
    verdict = _verdict(d - half, d + half, pct, threshold, worse_up)
    return Row("scalar", name, "all", _r(mb), _r(mc), _r(d), _r(pct, 2), _r(d - half),
               _r(d + half), _r(t_sf2(d / se, df), 6), verdict, False)  # fmt: skip


def _scalars(
    base: Sequence[dict[str, Any]], cand: Sequence[dict[str, Any]]
) -> list[tuple[str, list[float], list[float], bool | None]]:
    paths: list[tuple[str, bool | None]] = [
        ("requests.throughput_rps", False),
        ("upstream.calls_per_request", True),
        ("gateway.auth_cache_hit_rate", False),
    ]
    selectors: set[str] = set()
    for r in [*base, *cand]:
        selectors |= set((_get(r, "gateway.counters_per_request") or {}).keys())
    paths += [(f"gateway.counters_per_request.{s}", None) for s in sorted(selectors)]
    out = []
    for path, worse_up in paths:
        vb = [_get(r, path) if "counters_per_request." not in path else _counter(r, path)
              for r in base]  # fmt: skip
        vc = [_get(r, path) if "counters_per_request." not in path else _counter(r, path)
              for r in cand]  # fmt: skip
        if all(isinstance(v, int | float) for v in vb + vc):
            out.append((path, [float(v) for v in vb], [float(v) for v in vc], worse_up))
    return out


def _counter(r: dict[str, Any], path: str) -> Any:
    # Selectors contain dots and braces: look them up whole, not by dotted path.
    sel = path.removeprefix("gateway.counters_per_request.")
    return (_get(r, "gateway.counters_per_request") or {}).get(sel)


def compare_results(
    base: list[dict[str, Any]],
    cand: list[dict[str, Any]],
    threshold_pct: float = 5.0,
    confidence: float = 0.95,
    labels: tuple[list[str], list[str]] | None = None,
    paired: bool = False,
) -> Comparison:
    """Compare result dicts (one or more runs per side) and decide.

    ``paired``: base[i] and cand[i] ran back to back (``loadgate ab``); the
    per-round differences are tested, which cancels drift shared by a round.
    """
    if paired and len(base) != len(cand):
        raise UsageError(f"paired comparison needs as many base as candidate results "
                         f"({len(base)} vs {len(cand)})")  # fmt: skip
    if not base or not cand:
        raise UsageError("compare needs at least one result on each side")
    if not 0.5 <= confidence < 1.0:
        raise UsageError(f"confidence must be in [0.5, 1), got {confidence}")
    if threshold_pct < 0:
        raise UsageError(f"threshold must be >= 0, got {threshold_pct}")
    lb = labels[0] if labels else [_label(None, "base", i) for i in range(len(base))]
    lc = labels[1] if labels else [_label(None, "cand", i) for i in range(len(cand))]
    warnings = check_compatible([*base, *cand], [*lb, *lc])

    pending = _quantile_rows(base, cand, paired)
    rate_specs = [
        ("requests.error_rate", "requests.failed", "requests.sent"),
        ("integrity.violation_rate", "integrity.violations", "integrity.checked"),
    ]
    scalars = _scalars(base, cand)
    tests = (
        sum(1 for r, *_ in pending if r.gating)
        + len(rate_specs)
        + sum(1 for _, b, c, _ in scalars if len(b) > 1 and len(c) > 1)
    )
    alpha = (1.0 - confidence) / max(tests, 1)

    rows = [_finish_quantile(*p, alpha, threshold_pct) for p in pending]
    for name, num, den in rate_specs:
        row = _rate_row(name, num, den, base, cand, alpha)
        if row is not None:
            rows.append(row)
    rows += [_scalar_row(n, b, c, alpha, threshold_pct, w) for n, b, c, w in scalars]
    if not pending:
        warnings.append("no latency histograms present in both sides: nothing to compare")
    if len(base) == 1 and len(cand) == 1 and pending:
        batched = all(_get(r, "histogram_batches") for r in (*base, *cand))
        covers = (
            "sampling error and drift within each run, not an offset between runs"
            if batched
            else "sampling error only, not run-to-run drift (no time batches stored)"
        )
        warnings.append(
            f"one run per side: intervals cover {covers}; use several runs per side or "
            "`loadgate ab` before trusting a small change"
        )
    c = Comparison(rows, threshold_pct, confidence, tests, len(base), len(cand), warnings)
    if paired:
        c.method = "order-statistic or batch-means CI per run; paired per-round differences; t"
    return c


# --------------------------------------------------------------------- output


def _fmt(x: float | None, unit: str = "") -> str:
    if x is None:
        return "—"
    return f"{x:.3f}{unit}" if abs(x) < 1000 else f"{x:.1f}{unit}"


def _change(r: Row) -> str:
    if r.change is None:
        return "—"
    pct = f" ({r.change_pct:+.1f} %)" if r.change_pct is not None else ""
    return f"{r.change:+.3f}{pct}"


def _ci(r: Row) -> str:
    if r.ci_low is None or r.ci_high is None:
        return "—"
    return f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]"


def _headline(c: Comparison) -> str:
    n = len(c.regressions)
    if n:
        return f"REGRESSION: {n} figure(s) significantly worse by ≥ {c.threshold_pct:g} %"
    if c.improvements:
        return f"improvement: {len(c.improvements)} figure(s) significantly better, no regression"
    return "no significant change"


def _shown(c: Comparison, verbose: bool) -> list[Row]:
    if verbose:
        return c.rows
    # Per-mode rows only when they found something the all-modes row may hide.
    found = (REGRESSION, IMPROVEMENT, CHANGED)
    return [r for r in c.rows if r.mode == "all" or r.verdict in found]


def render_markdown(c: Comparison, verbose: bool = False) -> str:
    lines = [
        f"### loadgate compare: {_headline(c)}",
        "",
        f"{c.base_runs} base run(s) vs {c.cand_runs} candidate run(s); "
        f"{c.confidence:.0%} simultaneous intervals over {c.tests} tests; "
        f"threshold {c.threshold_pct:g} %. Latencies in ms.",
        "",
        "| figure | mode | base | cand | change | interval | verdict |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in _shown(c, verbose):
        verdict = f"**{r.verdict}**" if r.verdict in (REGRESSION, IMPROVEMENT) else r.verdict
        lines.append(
            f"| {r.name} | {r.mode} | {_fmt(r.base)} | {_fmt(r.cand)} | {_change(r)} "
            f"| {_ci(r)} | {verdict} |"
        )
    if c.warnings:
        lines.append("")
        lines += [f"> ⚠ {w}" for w in c.warnings]
    return "\n".join(lines) + "\n"


def _print_table(console: Any, c: Comparison, verbose: bool) -> None:
    from rich.table import Table

    t = Table(title=f"loadgate compare — {_headline(c)}", title_justify="left")
    for col in ("figure", "mode", "base", "cand", "change", "interval", "verdict"):
        t.add_column(
            col, justify="right" if col in ("base", "cand", "change") else "left", no_wrap=True
        )
    styles = {REGRESSION: "bold red", IMPROVEMENT: "bold green"}
    for r in _shown(c, verbose):
        style = styles.get(r.verdict)
        verdict = f"[{style}]{r.verdict}[/]" if style else r.verdict
        t.add_row(r.name, r.mode, _fmt(r.base), _fmt(r.cand), _change(r), _ci(r), verdict)
    console.print(t)
    console.print(
        f"{c.base_runs} vs {c.cand_runs} run(s); {c.confidence:.0%} simultaneous intervals "
        f"over {c.tests} tests; threshold {c.threshold_pct:g} %; latencies in ms"
    )
    for w in c.warnings:
        console.print(f"[yellow]warning:[/] {w}")


def render_table(c: Comparison, verbose: bool = False, width: int = 140) -> str:
    """The terminal table as plain text (for files and tests)."""
    from rich.console import Console

    console = Console(width=width, file=io.StringIO(), color_system=None)
    _print_table(console, c, verbose)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    return str(out)


def render(c: Comparison, fmt: str, verbose: bool = False) -> str:
    if fmt == "json":
        return json.dumps(c.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(c, verbose)
    if fmt == "table":
        return render_table(c, verbose)
    raise UsageError(f"--format must be table, markdown or json, not {fmt!r}")


# --------------------------------------------------------------------- CLI core


def load_results(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Load result files as dicts; a bad file is a one-line UsageError naming it."""
    from loadgate.result import load_result

    return [as_dict(load_result(Path(p))) for p in paths]


def main(
    base: list[Path],
    cand: list[Path],
    threshold_pct: float,
    fmt: str,
    out: Path | None,
    confidence: float = 0.95,
    verbose: bool = False,
) -> int:
    """``loadgate compare``: print (or write) the comparison; 1 on a regression."""
    if fmt not in ("table", "markdown", "json"):
        raise UsageError(f"--format must be table, markdown or json, not {fmt!r}")
    c = compare_results(
        load_results(base),
        load_results(cand),
        threshold_pct,
        confidence,
        labels=([str(p) for p in base], [str(p) for p in cand]),
    )
    if fmt == "table" and out is None:
        from rich.console import Console

        # colour on a terminal; plain and wide in CI logs (80 columns would elide figures)
        _print_table(Console() if sys.stdout.isatty() else Console(width=160), c, verbose)
    else:
        text = render(c, fmt, verbose)
        if out is not None:
            out.write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
    return c.exit_code
