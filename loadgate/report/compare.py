"""The HTML page of two runs drawn over each other (``render_compare_html``).

It draws; ``loadgate compare`` judges. Compare's own verdict (``regression``,
``improvement``, ``no change``, ``machine changed``) and its reasons may be passed
in to show on top. Each run's same-run control group (the harness floor) is shown
beside its figures, so a reader sees at once whether the machine moved too.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from loadgate.analysis.floor import FLOOR_SHARE
from loadgate.report._fmt import fmt_num, key_figures, metric, num
from loadgate.report._harness import CONTROL_LABEL, CONTROL_MEANING, control_summary
from loadgate.report._html import banner, page, table
from loadgate.report.html import DIST_METRICS, distribution_chart, mode_lines
from loadgate.result.model import Result

__all__ = ["render_compare_html"]

#: compare's verdict → banner colour (a regression is the one that fails a build)
_BANNER = {
    "regression": "fail",
    "improvement": "pass",
    "no change": "pass",
    "no significant change": "pass",
    "machine changed": "invalid",
}


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0:
        return "–"
    return f"{100.0 * (b - a) / a:+.1f} %"


def _tail(
    result: Result, name: str, control: bool = False
) -> tuple[float | None, float | None, float | None]:
    s = control_summary(result, name) if control else metric(result, name)
    return (num(s.p50), num(s.p99), num(s.p999)) if s is not None else (None, None, None)


def _control_cell(result: Result) -> str:
    c = result.harness.control
    if c is None:
        return "–"
    return escape(f"{fmt_num(c.p99(), 'ms')} (n={fmt_num(c.requests)})")


def render_compare_html(
    base: Result,
    cand: Result,
    *,
    verdict: str | None = None,
    reasons: Sequence[str] = (),
    labels: tuple[str, str] = ("base", "candidate"),
) -> str:
    """Two runs overlaid: base dashed, candidate solid, one colour per mode.

    ``verdict``/``reasons`` (optional) are compare's, shown on top as they are.
    """
    title = f"loadgate compare: {labels[0]} vs {labels[1]}"
    body = [f"<h1>{escape(title)}</h1>"]
    if verdict is not None:
        cls = _BANNER.get(verdict, "unknown")
        body.append(banner(cls, f"compare: {verdict}", reasons, verdict, "verdict"))
    rows = [
        [
            escape(label),
            escape(r.verdict),
            escape((r.git.commit if r.git and r.git.commit else "–")[:12]),
            escape(r.started_at or "–"),
            escape(r.profile_name),
            _control_cell(r),
        ]
        for label, r in zip(labels, (base, cand), strict=True)
    ]
    head = ["run", "verdict", "commit", "started", "profile", "control overhead p99 (floor)"]
    body.append(table(head, rows))
    cards = []
    for name, mtitle in DIST_METRICS:
        lines = mode_lines(base, name, f"{labels[0]} ", dashed=True)
        lines += mode_lines(cand, name, f"{labels[1]} ", dashed=False)
        chart = distribution_chart(f"{mtitle}: {name}", lines, f"cmp-{name}")
        cards.append(f'<div class="card">{chart}</div>')
    body.append(f'<h2>Distributions</h2><div class="grid">{"".join(cards)}</div>')
    fig_rows = [
        [escape(label), escape(a), escape(b)]
        for (label, a), (_, b) in zip(key_figures(base), key_figures(cand), strict=True)
    ]
    floors = base.harness.control is not None or cand.harness.control is not None
    for name, _ in DIST_METRICS:
        for control in (False, True) if floors else (False,):
            prefix = "control." if control else ""
            for stat, (a, b) in zip(
                ("p50", "p99", "p999"),
                zip(_tail(base, name, control), _tail(cand, name, control), strict=True),
                strict=True,
            ):
                label = escape(f"{prefix}{name}.{stat}")
                if control:
                    label = f'<span class="floor" title="{escape(CONTROL_MEANING)}">{label}</span>'
                fig_rows.append([label, fmt_num(a, "ms"), f"{fmt_num(b, 'ms')} ({_delta(a, b)})"])
    body.append("<h2>Figures</h2>" + table(["figure", labels[0], labels[1]], fig_rows))
    floor_note = (
        f" <code>control.*</code> rows are each run's {escape(CONTROL_LABEL)}: "
        f"{escape(CONTROL_MEANING)}. A change that the floor moved with, the same way, by "
        f"at least {100 * FLOOR_SHARE:g} % of it, is the machine's, not the gateway's."
        if floors
        else ""
    )
    body.append(
        '<p class="note">Differences here are descriptive; whether one is significant is '
        f"<code>loadgate compare</code>'s verdict.{floor_note}</p>"
    )
    return page(title, body)
