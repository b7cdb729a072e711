"""Metrics lint: the gateway's /metrics against Prometheus conventions and a required list.

Samples are read with prometheus-client's own text parser
(``text_string_to_metric_families``). That parser is lenient on purpose: it names
a counter's samples ``<name>_total`` even when the exposition did not, so the
``# TYPE`` / ``# HELP`` comment lines are also read as written (a line scan) to
see what the gateway actually declared. Rules (https://prometheus.io/docs/practices/naming/):

* ``type``: every family has a ``# TYPE``; ``help``: and a non-empty ``# HELP``;
* ``counter_total``: a counter's name ends in ``_total``; ``total_not_counter``: only
  counters do;
* ``base_units``: no ``ms``, ``microseconds``, ``kilobytes``, ``minutes``… in names
  (seconds and bytes are the base units);
* ``high_cardinality``: no label whose values grow with requests or keys: more than
  ``max_label_values`` distinct values in one family, or a value that looks like a
  key or an id (the run's key prefix, ``sk-``, ``Bearer``, a UUID, 16+ hex digits);
* ``required``: each required ``name`` / ``name{label,…}`` has a sample with those labels.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from loadgate.result.model import LintProblem, MetricsLint

__all__ = [
    "LintFinding",
    "LintReport",
    "lint_figures",
    "lint_metrics",
    "parse_required",
    "scrape_and_lint",
]

_NON_BASE_UNITS = frozenset(
    {
        "ms", "msec", "millis", "milliseconds", "us", "usec", "microseconds", "ns",
        "nanoseconds", "minutes", "hours", "days", "kb", "kilobytes", "mb", "megabytes",
        "gb", "gigabytes", "kib", "mib", "gib",
    }
)  # fmt: skip
_STRUCTURAL_LABELS = frozenset({"le", "quantile"})
#: A key on its face: flagged even as a label's only value.
_KEY_LIKE = re.compile(r"(?i)^(sk-|bearer\s)")
#: An id (UUID, 16+ hex digits): flagged when the label holds two or more of them (one
#: alone is more likely a build's commit than a per-request value).
_ID_LIKE = re.compile(
    r"(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}"
)
_REQUIRED = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^}]*)\})?\s*$")
_COMMENT = re.compile(r"^#\s*(HELP|TYPE)\s+(\S+)(?:\s+(.*))?$")


@dataclass(frozen=True, slots=True)
class LintFinding:
    metric: str
    rule: str
    detail: str


@dataclass(slots=True)
class LintReport:
    series: int = 0
    findings: list[LintFinding] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def parse_required(spec: str) -> tuple[str, frozenset[str]]:
    """``"http_requests_total{route,status}"`` → ``("http_requests_total", {route, status})``."""
    m = _REQUIRED.match(spec)
    if m is None:
        raise ValueError(f"{spec!r}: expected name or name{{label,…}}")
    labels = frozenset(p.strip() for p in (m.group(2) or "").split(",") if p.strip())
    return m.group(1), labels


def _declared(text: str) -> tuple[dict[str, str], set[str]]:
    """(name → type as the # TYPE lines say, names with a non-empty # HELP)."""
    types: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        if not line.startswith("#"):
            continue
        m = _COMMENT.match(line)
        if m is None:
            continue
        kind, name, rest = m.group(1), m.group(2), (m.group(3) or "").strip()
        if kind == "TYPE":
            types[name] = rest
        elif rest:
            helped.add(name)
    return types, helped


def _unit_problem(name: str) -> str | None:
    bad = [w for w in name.lower().split("_") if w in _NON_BASE_UNITS]
    return f"unit {bad[0]!r} in the name: use base units (seconds, bytes)" if bad else None


def lint_metrics(
    text: str, require: Iterable[str] = (), *, max_label_values: int = 100, key_prefix: str = ""
) -> LintReport:
    """Lint one exposition; never raises on the gateway's text (a parse error is a finding)."""
    report = LintReport()
    wanted = [(spec, *parse_required(spec)) for spec in require]
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, TypeError) as exc:
        report.findings.append(LintFinding("", "parse", f"unparseable exposition: {exc}"))
        report.missing = [spec for spec, _, _ in wanted]
        return report
    types, helped = _declared(text)
    found: set[str] = set()
    add = report.findings.append
    for fam in families:
        name = fam.name
        report.series += len(fam.samples)
        declared = [n for n in (name, name + "_total") if n in types]
        if fam.type == "unknown" or not declared:
            add(LintFinding(name, "type", "no # TYPE line"))
        if not fam.documentation and not any(n in helped for n in (name, name + "_total")):
            add(LintFinding(name, "help", "no # HELP text"))
        if fam.type == "counter" and declared and not any(n.endswith("_total") for n in declared):
            add(LintFinding(declared[0], "counter_total", "a counter's name must end in _total"))
        if fam.type not in ("counter", "unknown") and name.endswith("_total"):
            add(LintFinding(name, "total_not_counter", f"_total on a {fam.type}"))
        if (problem := _unit_problem(name)) is not None:
            add(LintFinding(name, "base_units", problem))
        values: dict[str, set[str]] = {}
        for sample in fam.samples:
            for label, value in sample.labels.items():
                if label not in _STRUCTURAL_LABELS:
                    values.setdefault(label, set()).add(value)
        for label, seen in sorted(values.items()):
            keys = [
                v for v in seen if _KEY_LIKE.search(v) or (key_prefix and v.startswith(key_prefix))
            ]
            ids = [v for v in seen if _ID_LIKE.search(v)]
            idlike = sorted(keys or (ids if len(ids) > 1 else []))
            if idlike:
                why = f"label {label!r} carries key/id-like values (e.g. {idlike[0]!r})"
                add(LintFinding(name, "high_cardinality", why))
            elif len(seen) > max_label_values:
                why = f"label {label!r} has {len(seen)} distinct values"
                add(LintFinding(name, "high_cardinality", why))
        for spec, want, labels in wanted:
            if spec in found:
                continue
            for sample in fam.samples:
                if want in (sample.name, name) and labels <= sample.labels.keys():
                    found.add(spec)
                    break
    for spec, _, _ in wanted:
        if spec not in found:
            report.missing.append(spec)
            report.findings.append(LintFinding(spec, "required", "required series absent"))
    return report


def lint_figures(report: LintReport, url: str | None) -> MetricsLint:
    """``gateway.metrics_lint`` from one lint."""
    return MetricsLint(
        url=url,
        series=report.series,
        problems=len(report.findings),
        missing=len(report.missing),
        details=[
            LintProblem(metric=f.metric, rule=f.rule, detail=f.detail) for f in report.findings
        ],
        missing_series=list(report.missing),
    )


async def scrape_and_lint(
    url: str,
    require: Iterable[str],
    *,
    max_label_values: int,
    key_prefix: str,
    timeout_s: float = 5.0,
) -> MetricsLint:
    """GET ``url`` once and lint what it returns; a failed scrape is ``error`` (no figures)."""
    try:
        async with (
            aiohttp.ClientSession(trust_env=False) as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as resp,
        ):
            resp.raise_for_status()
            text = await resp.text()
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return MetricsLint(url=url, error=f"{type(exc).__name__}: {exc}")
    report = lint_metrics(text, require, max_label_values=max_label_values, key_prefix=key_prefix)
    return lint_figures(report, url)
