"""The HTML report of one run: verdict and gates, pictures, the figures behind them.

Top to bottom: verdict and gates, then the pictures (percentile distributions,
time series), then the figures that explain them (overhead split, requests,
integrity, amplification), harness validity, and who measured what (machine,
profile). Shared page pieces are in :mod:`loadgate.report._html`; the compare
and sweep pages are :mod:`loadgate.report.compare` and :mod:`loadgate.report.sweep`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from loadgate.report._checks import check_rows, lint_lines, probe_rows
from loadgate.report._fmt import fmt_num, fmt_pct, key_figures, metric, num
from loadgate.report._harness import (
    CONTROL_LABEL,
    CONTROL_MEANING,
    control_summary,
    harness_rows,
    lag_text,
    latency_rows,
)
from loadgate.report._html import gates_table, header, kv, machine, page, table, verdict_block
from loadgate.report.distribution import distribution, histogram_key
from loadgate.report.svg import PALETTE, Axis, Series, line_chart
from loadgate.result.model import Result, Summary

__all__ = ["DIST_METRICS", "distribution_chart", "mode_lines", "render_html"]

#: Metrics drawn as percentile distributions, with their titles.
DIST_METRICS = (
    ("overhead_ms", "Proxy overhead"),
    ("ttft_overhead_ms", "TTFT overhead (streams)"),
    ("e2e_ms", "End-to-end latency"),
)
_MODES = (("stream", "stream", PALETTE[0]), ("non_stream", "non-stream", PALETTE[1]))


# -- distributions -------------------------------------------------------------

#: ``(label, base64 histogram, colour, dashed)``: one line of a distribution chart
Line = tuple[str, str, str, bool]


def distribution_chart(title: str, lines: Sequence[Line], chart_id: str, width: int = 560) -> str:
    """HdrHistogram-style plot of one metric, one line per histogram."""
    series = []
    for label, b64, color, dashed in lines:
        d = distribution(b64)
        if d is None:
            continue
        series.append(
            Series(f"{label} (n={d.count})", d.percentiles, d.values_ms, color=color, dashed=dashed)
        )
    return line_chart(
        series,
        x=Axis("percentile", scale="percentile"),
        y=Axis("ms"),
        title=title,
        width=width,
        chart_id=chart_id,
    )


def mode_lines(result: Result, metric: str, prefix: str = "", dashed: bool = False) -> list[Line]:
    """The stream and non-stream histograms of ``metric`` (the total for older results)."""
    hists = result.histograms
    lines: list[Line] = []
    for mode, label, color in _MODES:
        key = histogram_key(hists, metric, mode)
        if key is not None:
            lines.append((f"{prefix}{label}", hists[key], color, dashed))
    if not lines:  # results from before per-mode histograms: draw the total
        key = histogram_key(hists, metric, None)
        if key is not None:
            lines.append((f"{prefix}all", hists[key], PALETTE[2], dashed))
    return lines


def _label(text: str, control: bool) -> str:
    if not control:
        return escape(text)
    return f'<span class="floor" title="{escape(CONTROL_MEANING)}">{escape(text)}</span>'


def _percentile_rows(result: Result, name: str) -> list[list[str]]:
    """The per-mode rows, then the control group's (the floor) right below them."""
    out = []
    for r in latency_rows(result, [name], total=False):
        s = r.summary
        figures = (s.count, s.p50, s.p90, s.p99, s.p999, s.max)
        out.append(
            [_label(r.label, r.control)]
            + [f'<span class="num">{fmt_num(v)}</span>' for v in figures]
        )
    return out


def _distributions(result: Result) -> str:
    cards = []
    for name, title in DIST_METRICS:
        chart = distribution_chart(f"{title}: {name}", mode_lines(result, name), f"dist-{name}")
        rows = _percentile_rows(result, name)
        head = ["mode", "count", "p50", "p90", "p99", "p99.9", "max"]
        cards.append(f'<div class="card">{chart}{table(head, rows) if rows else ""}</div>')
    floor = (
        f'<p class="note"><i>{escape(CONTROL_LABEL)}</i>: {escape(CONTROL_MEANING)}. '
        "Its figures are in the tables; it is not drawn (a result keeps its summary, "
        "not its histogram).</p>"
        if result.harness.control is not None
        else ""
    )
    return (
        "<h2>Latency distributions</h2>"
        '<p class="note">HdrHistogram style: the x axis is the percentile on a log scale '
        "(each tick one more nine), values in ms, recorded at 1 µs resolution.</p>"
        f'{floor}<div class="grid">{"".join(cards)}</div>'
    )


# -- time series ---------------------------------------------------------------


def _hit_rate_series(result: Result) -> tuple[tuple[float, ...], tuple[float | None, ...]]:
    """``[t_s, rate]`` at scrape times: the time series', else the gateway section's."""
    pairs = result.timeseries.auth_cache_hit_rate
    if not pairs and result.gateway.auth_cache is not None:
        pairs = result.gateway.auth_cache.series
    return tuple(t for t, _ in pairs or ()), tuple(num(r) for _, r in pairs or ())


def _timeseries(result: Result) -> str:
    ts = result.timeseries
    xs = tuple(float(t) for t in ts.t_s)
    per_second: list[tuple[str, str, str, Sequence[float | None], str]] = [
        ("ts-rps", "Requests completed per second", "req/s", ts.rps, PALETTE[0]),
        ("ts-overhead", "Overhead p99 per second", "ms", ts.overhead_p99_ms, PALETTE[1]),
        ("ts-errors", "Errors per second", "errors/s", ts.errors, "#b02a37"),
    ]
    charts: list[tuple[str, str, list[Series], Axis]] = []
    for chart_id, title, unit, values, color in per_second:
        ys = tuple(num(v) for v in values)
        # A second without its t_s entry (a partial file) is placed by its index.
        sx = tuple(xs[i] if i < len(xs) else float(i) for i in range(len(ys)))
        charts.append(
            (chart_id, title, [Series(title, sx, ys, color=color)] if ys else [], Axis(unit))
        )
    hx, hy = _hit_rate_series(result)
    title = "Auth-cache hit rate"
    hit = [Series(title, hx, hy, color=PALETTE[2])] if hx else []
    charts.append(("ts-hit-rate", title, hit, Axis("hit rate", lo=0.0, hi=1.0)))
    cards = [
        '<div class="card">'
        + line_chart(
            series,
            x=Axis("time since measuring began (s)"),
            y=y,
            title=title,
            width=560,
            height=230,
            chart_id=chart_id,
        )
        + "</div>"
        for chart_id, title, series, y in charts
    ]
    return f'<h2>Over time</h2><div class="grid">{"".join(cards)}</div>'


# -- figures -------------------------------------------------------------------


def _p50_p99(s: Summary | None) -> str:
    return f"{fmt_num(s.p50 if s else None)} / {fmt_num(s.p99 if s else None)}"


def _split(result: Result) -> str:
    control = result.harness.control is not None
    rows = []
    for name, label in (
        ("ingress_ms", "ingress (client → gateway → stub)"),
        ("egress_ms", "egress (stub → gateway → client)"),
        ("overhead_ms", "overhead (= ingress + egress)"),
    ):
        cells = [escape(label)]
        cells += [_p50_p99(metric(result, name, mode)) for mode in ("stream", "non_stream", None)]
        if control:
            cells.append(_label(_p50_p99(control_summary(result, name)), True))
        rows.append(cells)
    head = ["part", "stream", "non-stream", "all"] + ([CONTROL_LABEL] if control else [])
    floor = (
        f" The {escape(CONTROL_LABEL)} column is {escape(CONTROL_MEANING)}: what the same "
        "parts cost with no gateway in the path."
        if control
        else ""
    )
    return (
        "<h2>Where the overhead is spent</h2>"
        '<p class="note">p50 / p99 in ms. Ingress ends when the stub has read the request; '
        f"egress starts when the stub has written its last byte.{floor}</p>"
        + table(head, rows, "split")
    )


def _counts(result: Result) -> str:
    req, integ, up = result.requests, result.integrity, result.upstream
    left = kv(
        [
            ("sent", fmt_num(req.sent)),
            ("ok", fmt_num(req.ok)),
            ("failed", fmt_num(req.failed)),
            ("error rate", fmt_pct(req.error_rate)),
            ("throughput", fmt_num(req.throughput_rps, "req/s")),
            (
                "offered / achieved rate",
                f"{fmt_num(req.rate_offered)} / {fmt_num(req.rate_achieved)} req/s",
            ),
            ("max-inflight cap hits", fmt_num(req.max_inflight_hits)),
            (
                "excluded (warm-up / cool-down)",
                f"{fmt_num(req.warmup_excluded)} / {fmt_num(req.cooldown_excluded)}",
            ),
            *((f"error: {k}", fmt_num(v)) for k, v in req.errors.items()),
        ]
    )
    mid = kv(
        [
            ("checked", fmt_num(integ.checked)),
            ("violations", fmt_num(integ.violations)),
            *((f"violation: {k}", fmt_num(v)) for k, v in integ.by_class.items()),
        ],
        "integrity",
    )
    right = kv(
        [
            ("upstream calls", fmt_num(up.calls)),
            ("calls per request", fmt_num(up.calls_per_request)),
            ("answered without upstream call", fmt_num(up.unseen)),
            ("retried / fanned out", fmt_num(up.duplicated)),
            ("ledger records lost", fmt_num(up.ledger_lost)),
            ("auth-cache hit rate", fmt_pct(result.gateway.auth_cache_hit_rate)),
        ],
        "amplification",
    )
    return (
        '<h2>Requests, integrity, amplification</h2><div class="grid">'
        f"<div><h3>Requests</h3>{left}</div><div><h3>Integrity</h3>{mid}</div>"
        f"<div><h3>Upstream amplification</h3>{right}</div></div>"
    )


def _probes(result: Result) -> str:
    overview = kv(probe_rows(result), "probes")
    w = result.probes.witness
    if w is None:
        return f"<h2>Probes</h2>{overview}"
    rows = [
        ("kind / sample", f"{w.kind} / {fmt_pct(w.sample)}"),
        ("sampled / found / missing", f"{w.sampled} / {w.found} / {w.missing}"),
        ("skipped (max_watched)", fmt_num(w.skipped)),
        ("latency, completion → seen (ms)", lag_text(w.latency_ms)),
        ("± error, half-width (ms)", lag_text(w.error_ms)),
        ("upper bound (ms)", lag_text(w.upper_ms)),
        ("queries / failed", f"{w.polls} / {w.poll_errors}"),
        ("queries per second", fmt_num(w.polls_per_s)),
        ("query round trip (ms)", lag_text(w.rtt_ms)),
        ("most in flight", fmt_num(w.max_in_flight)),
    ]
    errors = "".join(f'<div class="warn">{escape(e)}</div>' for e in w.errors)
    return f"<h2>Probes</h2>{overview}<h3>Side-effect witness</h3>{errors}{kv(rows, 'witness')}"


def _floor_text(floor: Mapping[str, float] | None) -> str:
    if not floor:
        return "–"
    return " / ".join(f"{k} {fmt_num(floor[k])}" for k in ("p50", "p99", "max") if k in floor)


def _checks(result: Result) -> str:
    problems = "".join(f"<li>{escape(line)}</li>" for line in lint_lines(result))
    listed = f"<h3>Metrics lint problems</h3><ul>{problems}</ul>" if problems else ""
    return f"<h2>Checks</h2>{kv(check_rows(result), 'checks')}{listed}"


def _harness(result: Result) -> str:
    h = result.harness
    state = (
        '<p class="bad">Invalid: see the reasons at the top (harness limits, interruption).</p>'
        if result.verdict == "invalid"
        else '<p class="ok">Valid: the harness stayed within its limits.</p>'
    )
    shared = harness_rows(result)
    rows = [
        *(r for r in shared if r[0] == "timestamps"),
        ("event-loop lag (ms)", lag_text(h.loop_lag_ms)),
        *(r for r in shared if r[0] != "timestamps"),
        ("stub timer lateness (ms)", lag_text(h.stub_timer_lateness_ms)),
        ("process CPU", fmt_num(h.cpu_percent, "%")),
        ("achieved / offered rate", fmt_num(h.achieved_rate_ratio)),
        ("load workers", fmt_num(h.workers)),
        ("harness floor, direct runs (ms)", _floor_text(h.floor_ms)),
    ]
    if h.limits is not None:
        rows += [(f"limit: {k}", fmt_num(v)) for k, v in h.limits if isinstance(v, int | float)]
    warns = "".join(f'<div class="warn">{escape(w)}</div>' for w in h.warnings)
    return f"<h2>Harness validity</h2>{state}{warns}{kv(rows, 'harness')}"


# -- the page ------------------------------------------------------------------


def render_html(result: Result) -> str:
    """The report of one run (``loadgate report RESULT.json --html``)."""
    title = f"loadgate report: {result.profile_name}"
    figures = kv(key_figures(result), "key-figures")
    return page(
        title,
        [
            header(result, title),
            verdict_block(result),
            '<div class="grid"><div><h2>Gates</h2>'
            + gates_table(result.gates)
            + f"</div><div><h2>Key figures</h2>{figures}</div></div>",
            _distributions(result),
            _timeseries(result),
            _split(result),
            _counts(result),
            _probes(result),
            _checks(result),
            _harness(result),
            machine(result),
        ],
    )
