"""Self-contained HTML reports: one run, a comparison of two runs, a sweep.

Each page is a single file with inline CSS and inline SVG (loadgate.report.svg):
no script, no font, no image is fetched when it is opened, so it can be
attached to a CI job, mailed, or opened years later. Layout, top to bottom:
verdict and gates, then the pictures (percentile distributions, time series),
then the figures that explain them (overhead split, requests, integrity,
amplification), harness validity, and who measured what (machine, profile).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from loadgate.report._fmt import (
    dig,
    fmt_num,
    fmt_pct,
    gate_rule,
    gate_value,
    key_figures,
    num,
    warnings_of,
)
from loadgate.report.distribution import distribution, histogram_key
from loadgate.report.svg import PALETTE, Axis, Rule, Series, line_chart, stack

__all__ = [
    "DIST_METRICS",
    "distribution_chart",
    "render_compare_html",
    "render_html",
    "render_sweep_html",
    "sweep_points",
    "sweep_svg",
]

#: Metrics drawn as percentile distributions, with their titles.
DIST_METRICS = (
    ("overhead_ms", "Proxy overhead"),
    ("ttft_overhead_ms", "TTFT overhead (streams)"),
    ("e2e_ms", "End-to-end latency"),
)
_MODES = (("stream", "stream", PALETTE[0]), ("non_stream", "non-stream", PALETTE[1]))

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;
 color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1200px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;
 border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.sub{color:#555;margin:0 0 14px}
.verdict{border-radius:6px;padding:12px 16px;color:#fff;font-size:18px;font-weight:600}
.verdict.pass{background:#1e7e34}.verdict.fail{background:#b02a37}
.verdict.invalid{background:#8a6d00}.verdict.unknown{background:#555}
.verdict ul{font-size:14px;font-weight:400;margin:6px 0 0;padding-left:20px}
table{border-collapse:collapse;background:#fff;margin:6px 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#eef0f3;font-weight:600}td.num{text-align:right}
.ok{color:#1e7e34;font-weight:600}.bad{color:#b02a37;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:14px}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px}
.warn{background:#fff4d6;border:1px solid #e0c060;border-radius:4px;padding:6px 10px;
 margin:4px 0}
pre{background:#fff;border:1px solid #ddd;padding:10px;overflow:auto;font-size:12px}
.note{color:#555;font-size:13px}
"""


# -- building blocks -----------------------------------------------------------


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{_CSS}</style></head><body><main>\n"
        + "\n".join(body)
        + "\n</main></body></html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """Rows are already-escaped HTML cells (callers escape their text)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: Sequence[tuple[str, str]], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table{attr}><tbody>{body}</tbody></table>"


def _verdict_block(data: Mapping[str, Any]) -> str:
    verdict = str(data.get("verdict") or "unknown")
    cls = verdict if verdict in ("pass", "fail", "invalid") else "unknown"
    label = {
        "pass": "PASS: every gate passed",
        "fail": "FAIL: a gate failed",
        "invalid": "INVALID: the measurement cannot be trusted; the gates prove nothing",
    }.get(verdict, f"verdict {verdict}")
    reasons = data.get("reasons") or []
    items = "".join(f"<li>{escape(str(r))}</li>" for r in reasons)
    return (
        f'<div class="verdict {cls}" id="verdict" data-verdict="{escape(verdict)}">'
        f"{escape(label)}{f'<ul>{items}</ul>' if items else ''}</div>"
    )


def _gates_table(gates: Any) -> str:
    if not isinstance(gates, list) or not gates:
        return '<p class="note">No gates in this result.</p>'
    rows = []
    for g in gates:
        ok = bool(g.get("passed"))
        rows.append(
            [
                f"<code>{escape(str(g.get('name')))}</code>",
                escape(gate_value(g)),
                escape(gate_rule(g)),
                f'<span class="{"ok" if ok else "bad"}">{"pass" if ok else "FAIL"}</span>',
            ]
        )
    return _table(["gate", "measured", "budget", "result"], rows, "gates")


def _header(data: Mapping[str, Any], title: str) -> str:
    profile = dig(data, "profile", "name") or "?"
    gw = dig(data, "gateway", "kind") or "?"
    url = dig(data, "gateway", "url")
    commit = dig(data, "git", "commit")
    bits = [
        f"profile <b>{escape(str(profile))}</b>",
        f"gateway {escape(str(gw))}" + (f" at {escape(str(url))}" if url else ""),
        f"started {escape(str(data.get('started_at') or '?'))}",
        f"duration {fmt_num(data.get('duration_s'), 's')}",
    ]
    if commit:
        dirty = " (dirty)" if dig(data, "git", "dirty") else ""
        bits.append(f"commit <code>{escape(str(commit)[:12])}</code>{dirty}")
    return f'<h1>{escape(title)}</h1><p class="sub">{" · ".join(bits)}</p>'


# -- distributions -------------------------------------------------------------


def distribution_chart(
    title: str,
    lines: Sequence[tuple[str, str | None, str, bool]],
    chart_id: str,
    width: int = 560,
) -> str:
    """HdrHistogram-style plot; ``lines`` = ``(label, base64 histogram, colour, dashed)``."""
    series = []
    for label, b64, color, dashed in lines:
        if not b64:
            continue
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


def _mode_lines(
    hists: Mapping[str, Any], metric: str, prefix: str = "", dashed: bool = False
) -> list[tuple[str, str | None, str, bool]]:
    lines: list[tuple[str, str | None, str, bool]] = []
    for mode, label, color in _MODES:
        key = histogram_key(hists, metric, mode)
        if key is not None:
            lines.append((f"{prefix}{label}", hists[key], color, dashed))
    if not lines:  # results from before per-mode histograms: draw the total
        key = histogram_key(hists, metric, None)
        if key is not None:
            lines.append((f"{prefix}all", hists[key], PALETTE[2], dashed))
    return lines


def _percentile_rows(data: Mapping[str, Any], metric: str) -> list[list[str]]:
    rows = []
    for mode, label, _ in _MODES:
        s = dig(data, "by_mode", mode, "metrics", metric)
        if isinstance(s, Mapping):
            rows.append(
                [escape(label)]
                + [
                    f'<span class="num">{fmt_num(s.get(k))}</span>'
                    for k in ("count", "p50", "p90", "p99", "p999", "max")
                ]
            )
    return rows


def _distributions(data: Mapping[str, Any]) -> str:
    hists = data.get("histograms") or {}
    cards = []
    for metric, title in DIST_METRICS:
        chart = distribution_chart(
            f"{title}: {metric}", _mode_lines(hists, metric), f"dist-{metric}"
        )
        rows = _percentile_rows(data, metric)
        table = _table(["mode", "count", "p50", "p90", "p99", "p99.9", "max"], rows) if rows else ""
        cards.append(f'<div class="card">{chart}{table}</div>')
    return (
        "<h2>Latency distributions</h2>"
        '<p class="note">HdrHistogram style: the x axis is the percentile on a log scale '
        "(each tick one more nine), values in ms, recorded at 1 µs resolution.</p>"
        f'<div class="grid">{"".join(cards)}</div>'
    )


# -- time series ---------------------------------------------------------------


def _floats(values: Any) -> tuple[float | None, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(num(v) for v in values)


def _hit_rate_series(data: Mapping[str, Any]) -> tuple[tuple[float, ...], tuple[float | None, ...]]:
    """Either ``[[t_s, rate], …]`` (scrape times) or one rate per ``t_s`` second."""
    ts = dig(data, "timeseries") or {}
    raw = ts.get("auth_cache_hit_rate")
    if not raw:
        raw = dig(data, "gateway", "auth_cache", "series")
    if not isinstance(raw, list) or not raw:
        return (), ()
    if all(isinstance(p, list) and len(p) == 2 for p in raw):
        pairs = [(num(p[0]), num(p[1])) for p in raw]
        kept = [(t, r) for t, r in pairs if t is not None]
        return tuple(t for t, _ in kept), tuple(r for _, r in kept)
    t_s = _floats(ts.get("t_s"))
    xs = tuple(t if t is not None else float(i) for i, t in enumerate(t_s[: len(raw)]))
    if len(xs) < len(raw):
        xs = tuple(float(i) for i in range(len(raw)))
    return xs, _floats(raw)


def _timeseries(data: Mapping[str, Any]) -> str:
    ts = dig(data, "timeseries") or {}
    t_s = _floats(ts.get("t_s"))
    xs = tuple(t if t is not None else float(i) for i, t in enumerate(t_s))

    def aligned(key: str) -> tuple[float, ...]:
        return xs[: len(_floats(ts.get(key)))]

    hx, hy = _hit_rate_series(data)
    specs = [
        ("ts-rps", "Requests completed per second", "req/s", "rps", PALETTE[0], None),
        ("ts-overhead", "Overhead p99 per second", "ms", "overhead_p99_ms", PALETTE[1], None),
        ("ts-errors", "Errors per second", "errors/s", "errors", "#b02a37", None),
        ("ts-hit-rate", "Auth-cache hit rate", "hit rate", "", PALETTE[2], (hx, hy)),
    ]
    cards = []
    for chart_id, title, unit, key, color, given in specs:
        if given is not None:
            sx, sy = given
            series = [Series(title, sx, sy, color=color)] if sx else []
            y = Axis(unit, lo=0.0, hi=1.0)
        else:
            sy = _floats(ts.get(key))
            series = [Series(title, aligned(key), sy, color=color)] if sy else []
            y = Axis(unit)
        cards.append(
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
        )
    return f'<h2>Over time</h2><div class="grid">{"".join(cards)}</div>'


# -- figures -------------------------------------------------------------------


def _split(data: Mapping[str, Any]) -> str:
    rows = []
    for metric, label in (
        ("ingress_ms", "ingress (client → gateway → stub)"),
        ("egress_ms", "egress (stub → gateway → client)"),
        ("overhead_ms", "overhead (= ingress + egress)"),
    ):
        cells = [escape(label)]
        for mode in ("stream", "non_stream", None):
            node = (
                dig(data, "metrics", metric)
                if mode is None
                else dig(data, "by_mode", mode, "metrics", metric)
            )
            cells.append(f"{fmt_num(dig(node, 'p50'))} / {fmt_num(dig(node, 'p99'))}")
        rows.append(cells)
    return (
        "<h2>Where the overhead is spent</h2>"
        '<p class="note">p50 / p99 in ms. Ingress ends when the stub has read the request; '
        "egress starts when the stub has written its last byte.</p>"
        + _table(["part", "stream", "non-stream", "all"], rows, "split")
    )


def _counts(data: Mapping[str, Any]) -> str:
    req = dig(data, "requests") or {}
    integ = dig(data, "integrity") or {}
    up = dig(data, "upstream") or {}
    err_rows = [(str(k), fmt_num(v)) for k, v in (req.get("errors") or {}).items()]
    viol_rows = [(str(k), fmt_num(v)) for k, v in (integ.get("by_class") or {}).items()]
    left = _kv(
        [
            ("sent", fmt_num(req.get("sent"))),
            ("ok", fmt_num(req.get("ok"))),
            ("failed", fmt_num(req.get("failed"))),
            ("error rate", fmt_pct(req.get("error_rate"))),
            ("throughput", fmt_num(req.get("throughput_rps"), "req/s")),
            (
                "offered / achieved rate",
                f"{fmt_num(req.get('rate_offered'))} / {fmt_num(req.get('rate_achieved'))} req/s",
            ),
            ("max-inflight cap hits", fmt_num(req.get("max_inflight_hits"))),
            (
                "excluded (warm-up / cool-down)",
                f"{fmt_num(req.get('warmup_excluded'))} / {fmt_num(req.get('cooldown_excluded'))}",
            ),
            *((f"error: {k}", v) for k, v in err_rows),
        ]
    )
    mid = _kv(
        [
            ("checked", fmt_num(integ.get("checked"))),
            ("violations", fmt_num(integ.get("violations"))),
            *((f"violation: {k}", v) for k, v in viol_rows),
        ],
        "integrity",
    )
    right = _kv(
        [
            ("upstream calls", fmt_num(up.get("calls"))),
            ("calls per request", fmt_num(up.get("calls_per_request"))),
            ("answered without upstream call", fmt_num(up.get("unseen"))),
            ("retried / fanned out", fmt_num(up.get("duplicated"))),
            ("ledger records lost", fmt_num(up.get("ledger_lost"))),
            ("auth-cache hit rate", fmt_pct(dig(data, "gateway", "auth_cache_hit_rate"))),
        ],
        "amplification",
    )
    return (
        '<h2>Requests, integrity, amplification</h2><div class="grid">'
        f"<div><h3>Requests</h3>{left}</div><div><h3>Integrity</h3>{mid}</div>"
        f"<div><h3>Upstream amplification</h3>{right}</div></div>"
    )


def _summary_text(node: Any) -> str:
    if isinstance(node, Mapping):
        return " / ".join(f"{k} {fmt_num(node.get(k))}" for k in ("p50", "p99", "max") if k in node)
    return fmt_num(node)


def _harness(data: Mapping[str, Any]) -> str:
    h = dig(data, "harness") or {}
    verdict = data.get("verdict")
    state = (
        '<p class="bad">Invalid: see the reasons at the top (harness limits, interruption).</p>'
        if verdict == "invalid"
        else '<p class="ok">Valid: the harness stayed within its limits.</p>'
    )
    rows = [
        ("event-loop lag (ms)", _summary_text(h.get("loop_lag_ms"))),
        ("send lag, open loop (ms)", _summary_text(h.get("send_lag_ms"))),
        ("stub timer lateness (ms)", _summary_text(h.get("stub_timer_lateness_ms"))),
        ("process CPU", fmt_num(h.get("cpu_percent"), "%")),
        ("achieved / offered rate", fmt_num(h.get("achieved_rate_ratio"))),
        ("load workers", fmt_num(h.get("workers"))),
        ("harness floor (ms)", _summary_text(h.get("floor_ms"))),
    ]
    limits = h.get("limits") or {}
    rows += [(f"limit: {k}", fmt_num(v)) for k, v in limits.items()]
    warns = "".join(f'<div class="warn">{escape(w)}</div>' for w in warnings_of(data))
    return f"<h2>Harness validity</h2>{state}{warns}{_kv(rows, 'harness')}"


def _machine(data: Mapping[str, Any]) -> str:
    env = dig(data, "environment") or {}
    rows = [(str(k), _plain(v)) for k, v in env.items() if k != "packages"]
    pkgs = env.get("packages") or {}
    rows += [(f"package {k}", _plain(v)) for k, v in pkgs.items()]
    git = dig(data, "git")
    if isinstance(git, Mapping):
        rows += [(f"git {k}", _plain(v)) for k, v in git.items()]
    profile = json.dumps(data.get("profile") or {}, indent=2, sort_keys=False)
    return (
        f"<h2>Machine</h2>{_kv(rows, 'environment')}"
        f"<h2>Profile</h2><details><summary>resolved profile (secrets redacted)</summary>"
        f"<pre>{escape(profile)}</pre></details>"
    )


def _plain(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return "–" if v is None else str(v)


# -- pages ---------------------------------------------------------------------


def render_html(data: Mapping[str, Any]) -> str:
    """The report of one run (``loadgate report RESULT.json --html``)."""
    title = f"loadgate report: {dig(data, 'profile', 'name') or 'run'}"
    figures = _kv(key_figures(data), "key-figures")
    return _page(
        title,
        [
            _header(data, title),
            _verdict_block(data),
            '<div class="grid"><div><h2>Gates</h2>'
            + _gates_table(data.get("gates"))
            + f"</div><div><h2>Key figures</h2>{figures}</div></div>",
            _distributions(data),
            _timeseries(data),
            _split(data),
            _counts(data),
            _harness(data),
            _machine(data),
        ],
    )


def render_compare_html(
    base: Mapping[str, Any],
    cand: Mapping[str, Any],
    *,
    comparison: Mapping[str, Any] | None = None,
    labels: tuple[str, str] = ("base", "candidate"),
) -> str:
    """Two runs overlaid: base dashed, candidate solid, one colour per mode.

    ``comparison`` (optional) is compare's own verdict (``verdict``, ``reasons``)
    shown on top; this page draws, it does not judge.
    """
    title = f"loadgate compare: {labels[0]} vs {labels[1]}"
    body = [f"<h1>{escape(title)}</h1>"]
    if comparison is not None:
        body.append(_verdict_block(comparison))
    rows = []
    for label, d in zip(labels, (base, cand), strict=True):
        rows.append(
            [
                escape(label),
                escape(str(d.get("verdict"))),
                escape(str(dig(d, "git", "commit") or "–")[:12]),
                escape(str(d.get("started_at") or "–")),
                escape(str(dig(d, "profile", "name") or "–")),
            ]
        )
    body.append(_table(["run", "verdict", "commit", "started", "profile"], rows))
    cards = []
    for metric, mtitle in DIST_METRICS:
        lines = _mode_lines(base.get("histograms") or {}, metric, f"{labels[0]} ", True)
        lines += _mode_lines(cand.get("histograms") or {}, metric, f"{labels[1]} ", False)
        chart = distribution_chart(f"{mtitle}: {metric}", lines, f"cmp-{metric}")
        cards.append(f'<div class="card">{chart}</div>')
    body.append(f'<h2>Distributions</h2><div class="grid">{"".join(cards)}</div>')
    fig_rows = []
    for (label, a), (_, b) in zip(key_figures(base), key_figures(cand), strict=True):
        fig_rows.append([escape(label), escape(a), escape(b)])
    for metric, _ in DIST_METRICS:
        for stat in ("p50", "p99", "p999"):
            a_v = num(dig(base, "metrics", metric, stat))
            b_v = num(dig(cand, "metrics", metric, stat))
            delta = (
                f"{100.0 * (b_v - a_v) / a_v:+.1f} %"
                if a_v is not None and b_v is not None and a_v != 0
                else "–"
            )
            fig_rows.append(
                [escape(f"{metric}.{stat}"), fmt_num(a_v, "ms"), f"{fmt_num(b_v, 'ms')} ({delta})"]
            )
    body.append("<h2>Figures</h2>" + _table(["figure", labels[0], labels[1]], fig_rows))
    body.append(
        '<p class="note">Differences here are descriptive; whether one is significant is '
        "<code>loadgate compare</code>'s verdict.</p>"
    )
    return _page(title, body)


def sweep_points(
    steps: Sequence[Mapping[str, Any]],
) -> tuple[str, list[tuple[float, float | None, float | None, bool | None]]]:
    """``(x label, [(x, throughput req/s, overhead p99 ms, passed)])`` per step.

    A step is one result summary: its load level is ``concurrency`` (or ``rate``)
    at the top or under ``load``; throughput under ``requests.throughput_rps``
    (or ``throughput_rps``); overhead p99 under ``metrics.overhead_ms.p99`` (or
    ``overhead_p99_ms``); passed from ``passed`` or ``verdict``.
    """
    label = "concurrency"
    out: list[tuple[float, float | None, float | None, bool | None]] = []
    for step in steps:
        x = num(step.get("concurrency")) or num(dig(step, "load", "concurrency"))
        if x is None:
            x = num(step.get("rate")) or num(dig(step, "load", "rate"))
            if x is not None:
                label = "offered rate (req/s)"
        if x is None:
            continue
        rps = num(dig(step, "requests", "throughput_rps"))
        rps = rps if rps is not None else num(step.get("throughput_rps"))
        p99 = num(dig(step, "metrics", "overhead_ms", "p99"))
        p99 = p99 if p99 is not None else num(step.get("overhead_p99_ms"))
        passed = step.get("passed")
        if not isinstance(passed, bool):
            verdict = step.get("verdict")
            passed = None if verdict is None else verdict == "pass"
        out.append((x, rps, p99, passed))
    out.sort(key=lambda p: p[0])
    return label, out


def _knee_x(knee: Mapping[str, Any] | None) -> float | None:
    if not isinstance(knee, Mapping):
        return None
    x = num(knee.get("max_concurrency"))
    return x if x is not None else num(knee.get("max_rate"))


def sweep_svg(
    steps: Sequence[Mapping[str, Any]],
    knee: Mapping[str, Any] | None,
    budget_ms: float | None,
    width: int = 760,
) -> str:
    """The knee plot as one standalone SVG: throughput above, overhead p99 below.

    Both panels share the load axis (log scale, a tick per step); the budget is a
    horizontal rule on the overhead panel, the knee a vertical rule on both.
    """
    label, pts = sweep_points(steps)
    xs = tuple(p[0] for p in pts)
    ticks = xs or None
    x_axis = Axis(label, scale="log" if xs and min(xs) > 0 else "linear", ticks=ticks)
    kx = _knee_x(knee)
    knee_rules = [Rule("x", kx, f"knee: {fmt_num(kx)}", "#1e7e34")] if kx is not None else []
    top = line_chart(
        [
            Series(
                "throughput (req/s)", xs, tuple(p[1] for p in pts), color=PALETTE[0], markers=True
            )
        ],
        x=x_axis,
        y=Axis("req/s"),
        title="Throughput",
        width=width,
        height=260,
        rules=knee_rules,
        chart_id="sweep-throughput",
    )
    rules = list(knee_rules)
    if budget_ms is not None and math.isfinite(budget_ms):
        rules.append(Rule("y", budget_ms, f"budget {fmt_num(budget_ms)} ms"))
    bottom = line_chart(
        [Series("overhead p99 (ms)", xs, tuple(p[2] for p in pts), color=PALETTE[1], markers=True)],
        x=x_axis,
        y=Axis("ms"),
        title="Overhead p99",
        width=width,
        height=260,
        rules=rules,
        chart_id="sweep-overhead",
    )
    return stack([top, bottom], width=width, heights=[260, 260], title="capacity sweep")


def _budget_of(sweep: Mapping[str, Any]) -> float | None:
    """The overhead p99 gate's threshold: from the first step's gates, else the profile."""
    for step in sweep.get("steps") or []:
        for g in step.get("gates") or []:
            if g.get("name") == "overhead_ms.p99":
                return num(g.get("threshold"))
    expr = dig(sweep, "profile", "gates", "overhead_ms.p99")
    if isinstance(expr, str):
        try:
            return float(expr.strip().lstrip("<>=!").strip())
        except ValueError:
            return None
    return None


def render_sweep_html(sweep: Mapping[str, Any]) -> str:
    """The sweep page: the knee, the knee plot, one row per step."""
    title = f"loadgate sweep: {dig(sweep, 'profile', 'name') or 'sweep'}"
    steps = [s for s in sweep.get("steps") or [] if isinstance(s, Mapping)]
    knee = sweep.get("knee") if isinstance(sweep.get("knee"), Mapping) else None
    label, pts = sweep_points(steps)
    kx = _knee_x(knee)
    knee_text = (
        f"Knee: {label} {fmt_num(kx)} at {fmt_num(dig(knee, 'throughput_rps'), 'req/s')}"
        if kx is not None
        else "No knee: no step passed every gate."
    )
    reason = dig(knee, "reason")
    rows = [
        [
            fmt_num(x),
            fmt_num(rps),
            fmt_num(p99),
            "–"
            if ok is None
            else (f'<span class="{"ok" if ok else "bad"}">{"pass" if ok else "FAIL"}</span>'),
        ]
        for x, rps, p99, ok in pts
    ]
    return _page(
        title,
        [
            _header(sweep, title),
            f'<div class="verdict {"pass" if kx is not None else "fail"}" id="knee">'
            f"{escape(knee_text)}"
            + (f"<ul><li>{escape(str(reason))}</li></ul>" if reason else "")
            + "</div>",
            '<h2>Knee plot</h2><div class="card">'
            + sweep_svg(steps, knee, _budget_of(sweep))
            + "</div>",
            "<h2>Steps</h2>"
            + _table([label, "throughput (req/s)", "overhead p99 (ms)", "gates"], rows),
            _machine(sweep),
        ],
    )
