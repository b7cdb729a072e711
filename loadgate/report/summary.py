"""End-of-run summary: verdict, gates, latency tables and stability warnings.

:func:`stability_warnings` is a pure function over the result dict, in the
spirit of pyperf: each warning is keyed by the figure it qualifies
(``overhead_ms.p99``, ``stream.ttft_ms.p999``, ``harness.loop_lag_ms``; gate
names use the same spelling), so :func:`print_summary` can print it right
beside that figure rather than in a footnote nobody reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loadgate.result import Result
from loadgate.result.legacy import as_dict
from loadgate.result.legacy import dig as _get

__all__ = ["P99_MIN_SAMPLES", "P999_MIN_SAMPLES", "print_summary", "stability_warnings"]

#: Below this many samples a p99 rests on fewer than 10 observations in its tail.
P99_MIN_SAMPLES = 1000
P999_MIN_SAMPLES = 10_000
#: A standard deviation above this share of the mean: the figures are not stable.
STDEV_SHARE = 0.5
#: Warn when a self-monitoring figure gets this close to the limit that makes a run invalid.
NEAR_LIMIT_SHARE = 0.5

_METRIC_ORDER = (
    "overhead_ms",
    "ttft_overhead_ms",
    "e2e_ms",
    "e2e_uncorrected_ms",
    "ingress_ms",
    "egress_ms",
    "ttft_ms",
    "itl_ms",
)
_MODES = (("", "all"), ("stream.", "stream"), ("non_stream.", "non_stream"))
#: Harness figures judged against their ``invalid`` limit: key, limit, label, what it means.
_NEAR_LIMIT = (
    (
        "loop_lag_ms",
        "max_loop_lag_p99_ms",
        "event-loop lag",
        "the harness may be delaying requests",
    ),
    (
        "stub_timer_lateness_ms",
        "max_stub_lateness_p99_ms",
        "stub timer lateness",
        "the stub is overloaded",
    ),
)
_DEFAULT_LIMITS = {
    "max_loop_lag_p99_ms": 5.0,
    "max_cpu_percent": 95.0,
    "max_stub_lateness_p99_ms": 5.0,
    "floor_warn_share": 0.25,
}


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _metric_tables(data: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(key prefix, mode label, metrics table) for all modes present."""
    out: list[tuple[str, str, Mapping[str, Any]]] = []
    for prefix, label in _MODES:
        table = _get(data, "metrics") if not prefix else _get(data, "by_mode", label, "metrics")
        if isinstance(table, Mapping):
            out.append((prefix, label, table))
    return out


def _limit(data: Mapping[str, Any], name: str) -> float:
    for source in (_get(data, "harness", "limits"), _get(data, "profile", "harness")):
        value = _num(_get(source, name))
        if value is not None:
            return value
    return _DEFAULT_LIMITS[name]


def _p99(value: Any) -> float | None:
    return _num(_get(value, "p99")) if isinstance(value, Mapping) else _num(value)


def stability_warnings(result: Result | Mapping[str, Any]) -> dict[str, list[str]]:
    """Figure key → warnings about how far that figure can be trusted."""
    data: Mapping[str, Any] = as_dict(result)
    out: dict[str, list[str]] = {}

    def warn(key: str, text: str) -> None:
        out.setdefault(key, []).append(text)

    for prefix, _label, table in _metric_tables(data):
        for name, stats in table.items():
            if not isinstance(stats, Mapping):
                continue
            count = _num(stats.get("count"))
            if count is not None:
                if count < P99_MIN_SAMPLES and _num(stats.get("p99")) is not None:
                    warn(
                        f"{prefix}{name}.p99",
                        f"only {count:.0f} samples behind p99 (< {P99_MIN_SAMPLES})",
                    )
                if count < P999_MIN_SAMPLES and _num(stats.get("p999")) is not None:
                    warn(
                        f"{prefix}{name}.p999",
                        f"only {count:.0f} samples behind p999 (< {P999_MIN_SAMPLES:,})".replace(
                            ",", " "
                        ),
                    )
            mean, stdev = _num(stats.get("mean")), _num(stats.get("stdev"))
            if mean and stdev is not None and mean > 0 and stdev > STDEV_SHARE * mean:
                warn(f"{prefix}{name}.mean", f"std dev is {100 * stdev / mean:.0f} % of the mean")

    floor = _p99(_get(data, "harness", "floor_ms"))
    share = _limit(data, "floor_warn_share")
    gates = data.get("gates")
    if floor is not None and isinstance(gates, list):
        for gate in gates:
            if not isinstance(gate, Mapping) or "overhead" not in str(gate.get("name", "")):
                continue
            budget = _num(gate.get("threshold"))
            if gate.get("op") in ("<", "<=") and budget and budget > 0 and floor > share * budget:
                warn(
                    str(gate["name"]),
                    f"harness floor p99 {floor:.2f} ms is {100 * floor / budget:.0f} % of this "
                    f"gate's {budget:g} ms budget (> {100 * share:.0f} %)",
                )

    for key, limit_name, what, meaning in _NEAR_LIMIT:
        value = _p99(_get(data, "harness", key))
        limit = _limit(data, limit_name)
        if value is not None and value > NEAR_LIMIT_SHARE * limit:
            warn(
                f"harness.{key}",
                f"{what} p99 {value:.2f} ms is {100 * value / limit:.0f} % of the "
                f"{limit:g} ms limit: {meaning}",
            )
    cpu = _num(_get(data, "harness", "cpu_percent"))
    cpu_limit = _limit(data, "max_cpu_percent")
    if cpu is not None and cpu > 0.85 * cpu_limit:
        warn(
            "harness.cpu_percent",
            f"harness CPU at {cpu:.0f} % (limit {cpu_limit:g} %): add load.workers",
        )
    return out


# --------------------------------------------------------------------------- printing


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def _note(warnings: Mapping[str, list[str]], *keys: str) -> Text:
    lines = [w for key in keys for w in warnings.get(key, [])]
    return Text("; ".join(f"⚠ {w}" for w in lines), style="yellow")


_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "invalid": "bold magenta"}


def _header(data: Mapping[str, Any], console: Console) -> None:
    verdict = str(data.get("verdict", "?"))
    name = _get(data, "profile", "name") or "run"
    line = Text.assemble(
        ("loadgate ", "bold"),
        (f"{name}: ", "bold"),
        (verdict.upper(), _VERDICT_STYLE.get(verdict, "bold")),
        f"  (exit {data.get('exit_code', '?')})",
    )
    if data.get("interrupted"):
        line.append(f"  interrupted: {data['interrupted']}", style="yellow")
    console.print(line)
    for reason in data.get("reasons") or []:
        console.print(Text(f"  • {reason}"))


def _gates_table(data: Mapping[str, Any], warnings: Mapping[str, list[str]]) -> Table | None:
    gates = data.get("gates")
    if not isinstance(gates, list) or not gates:
        return None
    table = Table(title="Gates", title_justify="left")
    for col in ("gate", "rule", "measured", "result", "note"):
        table.add_column(col, justify="right" if col == "measured" else "left")
    for g in gates:
        if not isinstance(g, Mapping):
            continue
        passed = bool(g.get("passed"))
        mark = Text("pass", style="green") if passed else Text("FAIL", style="bold red")
        value = g.get("value")
        measured = (
            f"{value:.6g}" if isinstance(value, int | float) else str(g.get("reason", "no data"))
        )
        threshold = _num(g.get("threshold"))
        rule = f"{g.get('op', '?')} {threshold:g}" if threshold is not None else "?"
        table.add_row(str(g.get("name")), rule, measured, mark, _note(warnings, str(g.get("name"))))
    return table


def _latency_table(data: Mapping[str, Any], warnings: Mapping[str, list[str]]) -> Table | None:
    tables = _metric_tables(data)
    if not any(tables_ for _p, _l, tables_ in tables):
        return None
    table = Table(title="Latency (ms)", title_justify="left")
    for col in ("metric", "mode", "count", "p50", "p90", "p99", "p999", "max", "note"):
        table.add_column(col, justify="left" if col in ("metric", "mode", "note") else "right")
    for name in _METRIC_ORDER:
        counts = [_num(_get(m, name, "count")) for _p, _l, m in tables]
        for prefix, label, metrics in tables:
            stats = metrics.get(name)
            if not isinstance(stats, Mapping):
                continue
            # A mode row that repeats the "all" row (only one mode ran) adds nothing.
            if prefix and counts.count(_num(stats.get("count"))) > 1:
                continue
            key = f"{prefix}{name}"
            # The thinnest-tail warning only: p999 is moot when p99 is already thin.
            tail = f"{key}.p99" if warnings.get(f"{key}.p99") else f"{key}.p999"
            table.add_row(
                name,
                label,
                _fmt(stats.get("count")),
                *(_fmt(stats.get(s)) for s in ("p50", "p90", "p99", "p999", "max")),
                _note(warnings, tail, f"{key}.mean"),
            )
    return table


def _kv_table(title: str, rows: list[tuple[str, Any, Text | str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for key, value, note in rows:
        table.add_row(key, value if isinstance(value, Text) else _fmt(value), note)
    return table


def _by_class(counts: Any) -> str:
    if not isinstance(counts, Mapping) or not counts:
        return ""
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _traffic_table(data: Mapping[str, Any], warnings: Mapping[str, list[str]]) -> Table:
    req = _get(data, "requests") or {}
    rate = _num(req.get("error_rate"))
    rows: list[tuple[str, Any, Text | str]] = [
        ("requests sent", req.get("sent"), ""),
        ("ok / failed", f"{_fmt(req.get('ok'))} / {_fmt(req.get('failed'))}", ""),
        (
            "error rate",
            f"{100 * rate:.3f} %" if rate is not None else None,
            _by_class(req.get("errors")),
        ),
        ("throughput (req/s)", req.get("throughput_rps"), ""),
    ]
    if req.get("rate_offered") is not None:
        rows.append(
            (
                "offered / achieved (req/s)",
                f"{_fmt(req.get('rate_offered'))} / {_fmt(req.get('rate_achieved'))}",
                f"inflight cap hit {_fmt(req.get('max_inflight_hits'))}×",
            )
        )
    integ = _get(data, "integrity") or {}
    rows.append(
        (
            "integrity checked / violations",
            f"{_fmt(integ.get('checked'))} / {_fmt(integ.get('violations'))}",
            _by_class(integ.get("by_class")),
        )
    )
    up = _get(data, "upstream") or {}
    extra = ", ".join(f"{k} {up[k]}" for k in ("unseen", "duplicated", "ledger_lost") if up.get(k))
    rows.append(
        (
            "upstream calls / per request",
            f"{_fmt(up.get('calls'))} / {_fmt(up.get('calls_per_request'), 3)}",
            extra,
        )
    )
    gw = _get(data, "gateway") or {}
    rows.append(("gateway", str(gw.get("kind") or "—"), str(gw.get("url") or "")))
    rows.append(
        (
            "auth-cache hit rate",
            gw.get("auth_cache_hit_rate"),
            _note(warnings, "gateway.auth_cache_hit_rate"),
        )
    )
    counters = gw.get("counters")
    if isinstance(counters, Mapping):
        for name, delta in counters.items():
            rows.append((f"counter {name}", delta, ""))
    drain = gw.get("drain")
    if isinstance(drain, Mapping) and drain.get("checked"):
        rows.append(
            (
                "drain on SIGTERM",
                "ok" if drain.get("ok") else "DROPPED",
                f"in flight {_fmt(drain.get('in_flight_at_term'))}, "
                f"dropped {_fmt(drain.get('dropped'))}",
            )
        )
    return _kv_table("Traffic", rows)


def _harness_table(data: Mapping[str, Any], warnings: Mapping[str, list[str]]) -> Table:
    h = _get(data, "harness") or {}
    rows: list[tuple[str, Any, Text | str]] = [
        (
            "event-loop lag p99 (ms)",
            _p99(h.get("loop_lag_ms")),
            _note(warnings, "harness.loop_lag_ms"),
        ),
        ("harness CPU (%)", h.get("cpu_percent"), _note(warnings, "harness.cpu_percent")),
        (
            "stub timer lateness p99 (ms)",
            _p99(h.get("stub_timer_lateness_ms")),
            _note(warnings, "harness.stub_timer_lateness_ms"),
        ),
        (
            "harness floor p99 (ms)",
            _p99(h.get("floor_ms")),
            ""
            if h.get("floor_ms") is not None
            else "measured only in direct runs: `loadgate run calibrate` on this machine",
        ),
    ]
    if h.get("workers") is not None:
        rows.append(("load workers", h.get("workers"), ""))
    for text in h.get("warnings") or []:
        rows.append(("warning", "", Text(f"⚠ {text}", style="yellow")))
    return _kv_table("Harness validity", rows)


def print_summary(result: Result, console: Console) -> None:
    """Print the verdict and every figure, each warning beside what it qualifies."""
    data = as_dict(result)
    warnings = stability_warnings(data)
    _header(data, console)
    for table in (
        _gates_table(data, warnings),
        _latency_table(data, warnings),
        _traffic_table(data, warnings),
        _harness_table(data, warnings),
    ):
        if table is not None:
            console.print(table)
    if data.get("run_dir"):
        console.print(Text(f"run directory: {data['run_dir']}", style="dim"))
