"""End-of-run summary: verdict, gates, latency tables and stability warnings.

:func:`stability_warnings` is a pure function of the typed result, in the
spirit of pyperf: each warning is keyed by the figure it qualifies
(``overhead_ms.p99``, ``stream.ttft_ms.p999``, ``harness.loop_lag_ms``; gate
names use the same spelling), so :func:`print_summary` can print it right
beside that figure rather than in a footnote nobody reads. A gate the run could
not decide reads ``undecided (would pass|fail)``, with why under the table.

Just over 400 lines: one table function per section of the summary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loadgate.profile import HarnessSpec
from loadgate.report._checks import check_rows, lint_lines, revoked_elsewhere
from loadgate.report._fmt import (
    floor_p99,
    fmt_num,
    gate_outcome,
    gate_status,
    goodput_misses,
    goodput_text,
    p99,
    undecided_groups,
)
from loadgate.report.workload import turn_table, workload_table
from loadgate.result.model import HarnessLimits, Result, Summary

__all__ = ["P99_MIN_SAMPLES", "P999_MIN_SAMPLES", "print_summary", "stability_warnings"]

#: Below this many samples a p99 rests on fewer than 10 observations in its tail.
P99_MIN_SAMPLES = 1000
P999_MIN_SAMPLES = 10_000
#: A standard deviation above this share of the mean: the figures are not stable.
STDEV_SHARE = 0.5
#: Warn when a self-monitoring figure gets this close to the limit that makes a run invalid.
NEAR_LIMIT_SHARE = 0.5
#: Warn when harness CPU gets this close to its limit (CPU saturates abruptly).
CPU_NEAR_LIMIT_SHARE = 0.85

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
_MODES = ("stream", "non_stream")


@dataclass(frozen=True, slots=True)
class _Limits:
    """The harness limits a run was judged by, each one known."""

    loop_lag_p99_ms: float
    cpu_percent: float
    stub_lateness_p99_ms: float
    floor_warn_share: float


def _limits(result: Result) -> _Limits:
    """As recorded in the result; else the profile's (files written before the limits
    were recorded carry them only there); else today's defaults."""
    rec = result.harness.limits or HarnessLimits()
    section = result.profile.get("harness")
    profile: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    spec = HarnessSpec()

    def pick(recorded: float | None, key: str, default: float) -> float:
        if recorded is not None:
            return recorded
        value = profile.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return default

    return _Limits(
        pick(rec.max_loop_lag_p99_ms, "max_loop_lag_p99_ms", spec.max_loop_lag_p99_ms),
        pick(rec.max_cpu_percent, "max_cpu_percent", spec.max_cpu_percent),
        pick(
            rec.max_stub_lateness_p99_ms, "max_stub_lateness_p99_ms", spec.max_stub_lateness_p99_ms
        ),
        pick(rec.floor_warn_share, "floor_warn_share", spec.floor_warn_share),
    )


def _metric_tables(result: Result) -> list[tuple[str, str, dict[str, Summary]]]:
    """(key prefix, mode label, metrics) for all modes present: all, stream, non_stream."""
    out = [("", "all", result.metrics)]
    out += [(f"{m}.", m, result.by_mode[m].metrics) for m in _MODES if m in result.by_mode]
    return out


def stability_warnings(result: Result) -> dict[str, list[str]]:
    """Figure key → warnings about how far that figure can be trusted."""
    out: dict[str, list[str]] = {}

    def warn(key: str, text: str) -> None:
        out.setdefault(key, []).append(text)

    for prefix, _label, table in _metric_tables(result):
        for name, stats in table.items():
            n = stats.count
            if n < P99_MIN_SAMPLES:
                warn(f"{prefix}{name}.p99", f"only {n} samples behind p99 (< {P99_MIN_SAMPLES})")
            if n < P999_MIN_SAMPLES:
                warn(
                    f"{prefix}{name}.p999",
                    f"only {n} samples behind p999 (< {P999_MIN_SAMPLES:,})".replace(",", " "),
                )
            if stats.mean > 0 and stats.stdev > STDEV_SHARE * stats.mean:
                share = 100 * stats.stdev / stats.mean
                warn(f"{prefix}{name}.mean", f"std dev is {share:.0f} % of the mean")

    _first_token_warnings(result, warn)

    limits = _limits(result)
    floor, share = floor_p99(result), limits.floor_warn_share
    if floor is not None:
        for gate in result.gates:
            budget = gate.threshold
            if "overhead" not in gate.name or gate.op not in ("<", "<=") or budget <= 0:
                continue
            if floor > share * budget:
                warn(
                    gate.name,
                    f"harness floor p99 {floor:.2f} ms is {100 * floor / budget:.0f} % of this "
                    f"gate's {budget:g} ms budget (> {100 * share:.0f} %)",
                )

    h = result.harness
    near = (
        ("loop_lag_ms", p99(h.loop_lag_ms), limits.loop_lag_p99_ms, "event-loop lag",
         "the harness may be delaying requests"),
        ("stub_timer_lateness_ms", p99(h.stub_timer_lateness_ms), limits.stub_lateness_p99_ms,
         "stub timer lateness", "the stub is overloaded"),
    )  # fmt: skip
    for key, value, limit, what, meaning in near:
        if value is not None and value > NEAR_LIMIT_SHARE * limit:
            warn(
                f"harness.{key}",
                f"{what} p99 {value:.2f} ms is {100 * value / limit:.0f} % of the "
                f"{limit:g} ms limit: {meaning}",
            )
    cpu = h.cpu_percent
    if cpu is not None and cpu > CPU_NEAR_LIMIT_SHARE * limits.cpu_percent:
        warn(
            "harness.cpu_percent",
            f"harness CPU at {cpu:.0f} % (limit {limits.cpu_percent:g} %): add load.workers",
        )
    return out


#: TTFT quantiles a share of first tokens read together with the next token can reach
_TAIL_QUANTILES = (("p90", 0.10), ("p99", 0.01), ("p999", 0.001))


def _first_token_warnings(result: Result, warn: Callable[[str, str], None]) -> None:
    """TTFT quantiles that first tokens read with the next token could make.

    A read carries its last segment's stamp, so a first token read together with
    the second is stamped with the second's arrival: that TTFT is an upper bound,
    late by up to the gap between them (docs/method.md, "Granularity"). When such
    first tokens are at least the tail beyond a quantile, that quantile may be one.
    """
    ratio = result.harness.first_token_same_read_ratio
    if not ratio:
        return
    for prefix, _label, table in _metric_tables(result):
        for name in ("ttft_ms", "ttft_overhead_ms"):
            if name not in table:
                continue
            for q, tail in _TAIL_QUANTILES:
                if ratio >= tail:
                    warn(
                        f"{prefix}{name}.{q}",
                        f"{100 * ratio:.2g} % of first tokens were read with the next one: "
                        f"{q} may be the next token's arrival (an upper bound)",
                    )


# --------------------------------------------------------------------------- printing


def _fmt(value: float | str | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return value


def _note(warnings: Mapping[str, list[str]], *keys: str) -> Text:
    lines = [w for key in keys for w in warnings.get(key, [])]
    return Text("; ".join(f"⚠ {w}" for w in lines), style="yellow")


_VERDICT_STYLE = {"pass": "bold green", "fail": "bold red", "invalid": "bold magenta"}
_GATE_STYLE = {"pass": "green", "fail": "bold red", "undecided": "bold yellow"}


def _header(result: Result, console: Console) -> None:
    line = Text.assemble(
        ("loadgate ", "bold"),
        (f"{result.profile_name}: ", "bold"),
        (result.verdict.upper(), _VERDICT_STYLE[result.verdict]),
        f"  (exit {result.exit_code})",
    )
    if result.interrupted:
        line.append(f"  interrupted: {result.interrupted}", style="yellow")
    console.print(line)
    for reason in result.reasons:
        console.print(Text(f"  • {reason}"))


def _gates_table(result: Result, warnings: Mapping[str, list[str]]) -> Table | None:
    if not result.gates:
        return None
    table = Table(title="Gates", title_justify="left")
    for col in ("gate", "rule", "measured", "result", "note"):
        table.add_column(col, justify="right" if col == "measured" else "left")
    for g in result.gates:
        mark = Text(gate_outcome(g), style=_GATE_STYLE[gate_status(g)])
        measured = f"{g.value:.6g}" if g.value is not None else (g.reason or "no data")
        table.add_row(g.name, f"{g.op} {g.threshold:g}", measured, mark, _note(warnings, g.name))
    return table


def _undecided_lines(result: Result) -> list[Text]:
    """Why gates are undecided, under the gates table: once per reason (an invalid
    run's gates share one), naming the gates."""
    return [
        Text(f"undecided: {', '.join(names)}: {why}", style="yellow")
        for names, why in undecided_groups(result.gates)
    ]


def _latency_table(result: Result, warnings: Mapping[str, list[str]]) -> Table | None:
    tables = _metric_tables(result)
    if not any(metrics for _p, _l, metrics in tables):
        return None
    table = Table(title="Latency (ms)", title_justify="left")
    for col in ("metric", "mode", "count", "p50", "p90", "p99", "p999", "max", "note"):
        table.add_column(col, justify="left" if col in ("metric", "mode", "note") else "right")
    for name in _METRIC_ORDER:
        counts = [m[name].count if name in m else None for _p, _l, m in tables]
        for prefix, label, metrics in tables:
            s = metrics.get(name)
            if s is None:
                continue
            # A mode row that repeats the "all" row (only one mode ran) adds nothing.
            if prefix and counts.count(s.count) > 1:
                continue
            key = f"{prefix}{name}"
            # The thinnest-tail warning only: p999 is moot when p99 is already thin.
            tail = f"{key}.p99" if warnings.get(f"{key}.p99") else f"{key}.p999"
            table.add_row(
                name,
                label,
                _fmt(s.count),
                *(_fmt(v) for v in (s.p50, s.p90, s.p99, s.p999, s.max)),
                _note(warnings, tail, f"{key}.mean"),
            )
            control = result.harness.control
            if not prefix and control is not None and name in control.metrics:
                # Beside the overhead: the harness + loopback + stub floor, same moment.
                c = control.metrics[name]
                table.add_row(
                    name,
                    Text("control", style="dim"),
                    _fmt(c.count),
                    *(_fmt(v) for v in (c.p50, c.p90, c.p99, c.p999, c.max)),
                    Text("straight to the stub, beside the load: the harness's floor", "dim"),
                )
    return table


def _kv_table(title: str, rows: list[tuple[str, float | str | None, Text | str]]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("note")
    for key, value, note in rows:
        # Texts, not markup: a note or value may hold "[cpus]" or "[slo]" literally.
        text = Text(note) if isinstance(note, str) else note
        table.add_row(Text(key), Text(_fmt(value)), text)
    return table


def _text_table(title: str, rows: list[tuple[str, str]]) -> Table:
    """Two columns, the second prose (a check's finding): left-aligned, no note column."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("check")
    table.add_column("result")
    for key, text in rows:
        table.add_row(Text(key), Text(text))
    return table


def _by_class(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _traffic_table(result: Result, warnings: Mapping[str, list[str]]) -> Table:
    req, integ, up, gw = result.requests, result.integrity, result.upstream, result.gateway
    rate = req.error_rate
    rows: list[tuple[str, float | str | None, Text | str]] = [
        ("requests sent", req.sent, ""),
        ("ok / failed", f"{_fmt(req.ok)} / {_fmt(req.failed)}", ""),
        ("error rate", f"{100 * rate:.3f} %" if rate is not None else None, _by_class(req.errors)),
        ("throughput (req/s)", req.throughput_rps, ""),
    ]
    if req.rate_offered is not None:
        rows.append(
            (
                "offered / achieved (req/s)",
                f"{_fmt(req.rate_offered)} / {_fmt(req.rate_achieved)}",
                f"inflight cap hit {_fmt(req.max_inflight_hits)}×",
            )
        )
    rows.append(
        (
            "goodput (every SLO met)",
            goodput_text(result),
            goodput_misses(result) if result.goodput is not None else "",
        )
    )
    rows.append(
        (
            "integrity checked / violations",
            f"{_fmt(integ.checked)} / {_fmt(integ.violations)}",
            _by_class(integ.by_class),
        )
    )
    lost = (("unseen", up.unseen), ("duplicated", up.duplicated), ("ledger_lost", up.ledger_lost))
    rows.append(
        (
            "upstream calls / per request",
            f"{_fmt(up.calls)} / {_fmt(up.calls_per_request, 3)}",
            ", ".join(f"{k} {n}" for k, n in lost if n),
        )
    )
    rows.append(("gateway", gw.kind or "—", gw.url or ""))
    rows.append(
        (
            "auth-cache hit rate",
            gw.auth_cache_hit_rate,
            _note(warnings, "gateway.auth_cache_hit_rate"),
        )
    )
    for name, delta in gw.counters.items():
        rows.append((f"counter {name}", fmt_num(delta), ""))
    drain = gw.drain
    if drain is not None and drain.checked:
        rows.append(
            (
                "drain on SIGTERM",
                "ok" if drain.ok else "DROPPED",
                f"in flight {_fmt(drain.in_flight_at_term)}, dropped {_fmt(drain.dropped)}",
            )
        )
    return _kv_table("Traffic", rows)


def _checks_table(result: Result) -> Table:
    rows = list(check_rows(result))
    rows += [("  lint problem", line) for line in lint_lines(result)[:10]]
    return _text_table("Checks", rows)


def _stamps_note(result: Result) -> str:
    """Where arrival times came from, and what per-read stamping means for ITL."""
    h = result.harness
    if h.timestamp_sources is None:
        return "not recorded (a result from before kernel timestamps)"
    src = ", ".join(f"{k} {v or '?'}" for k, v in h.timestamp_sources.items())
    if h.timestamps == "kernel":
        note = f"{src}: arrival times from the kernel, not when loadgate read them"
    else:
        note = f"{src}: stamped when read, so the harness's own lateness is in the figures"
    if h.deltas_same_read_ratio:
        note += f"; {100 * h.deltas_same_read_ratio:.1f} % of deltas shared a read"
    if h.first_token_same_read_ratio:
        note += f", {100 * h.first_token_same_read_ratio:.2g} % of first tokens"
    return note


def _harness_table(result: Result, warnings: Mapping[str, list[str]]) -> Table:
    h = result.harness
    floor = floor_p99(result)
    kernel = h.timestamps == "kernel"
    rows: list[tuple[str, float | str | None, Text | str]] = [
        ("timestamps", h.timestamps or "—", _stamps_note(result)),
        (
            "event-loop lag p99 (ms)",
            p99(h.loop_lag_ms),
            _note(warnings, "harness.loop_lag_ms")
            or ("not in the latencies (kernel timestamps)" if kernel else ""),
        ),
        ("harness CPU (%)", h.cpu_percent, _note(warnings, "harness.cpu_percent")),
        (
            "send lag p99 (ms)",
            p99(h.send_lag_ms),
            "after the schedule"
            if result.profile.get("load", {}).get("rate") is not None or result.trace is not None
            else "after the worker's previous response ended",
        ),
        (
            "stub timer lateness p99 (ms)",
            p99(h.stub_timer_lateness_ms),
            _note(warnings, "harness.stub_timer_lateness_ms"),
        ),
    ]
    if h.floor_ms is not None or h.control is None:
        rows.append(
            (
                "harness floor p99 (ms)",
                floor,
                ""
                if h.floor_ms is not None
                else "measured only in direct runs: `loadgate run calibrate` on this machine",
            )
        )
    if h.control is not None:
        rows.append(
            (
                "control group overhead p99 (ms)",
                h.control.p99(),
                f"{h.control.requests} requests ({100 * h.control.ratio:g} % beside the load) "
                "straight to the stub",
            )
        )
    if h.concurrency_ratio is not None:
        rows.append(("in flight / load.concurrency", h.concurrency_ratio, ""))
    if h.placement is not None:
        pl = h.placement
        sides = (("harness", pl.harness), ("stub", pl.stub), ("gateway", pl.gateway))
        # None: not pinned ("any"), except a gateway loadgate did not start ("unknown").
        where = ", ".join(
            f"{k} {','.join(map(str, v))}"
            if v is not None
            else f"{k} {'unknown' if k == 'gateway' and not pl.gateway_known else 'any'}"
            for k, v in sides
        )
        pinned = any(v is not None for _, v in sides)
        rows.append(("CPUs", where if pinned else "not pinned", pl.note))
    if h.workers is not None:
        rows.append(("load workers", h.workers, ""))
    for text in h.warnings:
        rows.append(("warning", "", Text(f"⚠ {text}", style="yellow")))
    return _kv_table("Harness validity", rows)


def _probes_table(result: Result) -> Table:
    """The probes beside the load; each says "not configured" when it was off."""
    w = result.probes.witness
    rows: list[tuple[str, float | str | None, Text | str]] = []
    if w is None:
        rows.append(("side-effect witness", "not configured", "[probes.witness] kind = off"))
        return _kv_table("Probes", rows)
    share = f"{100 * w.sample:g} % sampled" if w.sample is not None else ""
    skipped = f", {w.skipped} skipped (max_watched)" if w.skipped else ""
    rows.append(
        (
            f"witness ({w.kind}) sampled / found / missing",
            f"{w.sampled} / {w.found} / {w.missing}",
            share + skipped,
        )
    )
    lat, err, up = w.latency_ms, w.error_ms, w.upper_ms
    if lat is not None:
        rows.append(
            (
                "witness latency p50 / p99 / max (ms)",
                f"{_fmt(lat.p50)} / {_fmt(lat.p99)} / {_fmt(lat.max)}",
                f"± {_fmt(err.p50 if err else None)} typical, ± {_fmt(err.max if err else None)}"
                f" at most; upper bound p99 {_fmt(up.p99 if up else None)}",
            )
        )
    else:
        rows.append(("witness latency (ms)", None, "no record seen"))
    rtt = w.rtt_ms
    rows.append(
        (
            "witness queries",
            f"{w.polls} ({_fmt(w.polls_per_s, 1)}/s)",
            f"rtt p50 {_fmt(rtt.p50 if rtt else None)} / max {_fmt(rtt.max if rtt else None)}"
            f" ms, {w.poll_errors} failed, ≤ {w.max_in_flight} in flight",
        )
    )
    for text in w.errors[:2]:
        rows.append(("witness error", "", Text(text, style="yellow")))
    return _kv_table("Probes", rows)


def _auth_probes_table(result: Result) -> Table:
    """Revocation and tenant isolation; each says "not configured" when it was off."""
    rows: list[tuple[str, float | str | None, Text | str]] = []
    rev, ten = result.probes.revocation, result.probes.tenants
    elsewhere = revoked_elsewhere(result) if rev is None else None
    if elsewhere is not None:
        rows.append(("key revocation", "not here", elsewhere))
    elif rev is None:
        rows.append(("key revocation", "not configured", "probes.revocation.url or .command unset"))
    else:
        prop = rev.propagation_s
        bound = f"each ≤ {_fmt(rev.bound_s, 3)} s late (probe every {rev.interval_ms:g} ms)"
        rows.append(("keys revoked / never rejected", f"{rev.revoked} / {rev.never_rejected}", ""))
        rows.append(
            (
                "revocation propagation p50 / max (s)",
                f"{_fmt(prop.p50, 3)} / {_fmt(prop.max, 3)}",
                bound
                if prop.max is not None
                else Text(
                    "unknown: a key was never rejected, or its baseline / hook failed",
                    style="yellow",
                ),
            )
        )
        for k in rev.keys:
            if k.hook_error or k.flaps or k.propagation_s is None:
                what = k.hook_error or (
                    f"{k.flaps} flap(s)"
                    if k.propagation_s is not None
                    else f"not rejected in {_fmt(k.observed_s, 1)} s "
                    f"(baseline status {k.baseline_status})"
                )
                rows.append((f"key {k.key}", _fmt(k.propagation_s, 3), Text(what, style="yellow")))
    if ten is None:
        rows.append(("tenant isolation", "not configured", "probes.tenants.share = 0"))
    else:
        note: Text | str = ", ".join(ten.examples[:3])
        if ten.leaked:
            note = Text(f"⚠ leaked: {note}", style="red")
        rows.append(("cross-tenant tried / leaked", f"{ten.tried} / {ten.leaked}", note))
    return _kv_table("Key revocation and tenant isolation", rows)


def print_summary(result: Result, console: Console) -> None:
    """Print the verdict and every figure, each warning beside what it qualifies."""
    warnings = stability_warnings(result)
    _header(result, console)
    gates = _gates_table(result, warnings)
    if gates is not None:
        console.print(gates)
        for line in _undecided_lines(result):
            console.print(line)
    for table in (
        _latency_table(result, warnings),
        _traffic_table(result, warnings),
        _checks_table(result),
        _probes_table(result),
        _auth_probes_table(result),
        workload_table(result),
        turn_table(result),
        _harness_table(result, warnings),
    ):
        if table is not None:
            console.print(table)
    if result.run_dir:
        console.print(Text(f"run directory: {result.run_dir}", style="dim"))
