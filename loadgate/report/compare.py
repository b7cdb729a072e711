"""The HTML page of two runs drawn over each other (``render_compare_html``).

It draws; ``loadgate compare`` judges. Compare's own verdict (``regression``,
``improvement``, ``no change``) and its reasons may be passed in to show on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from loadgate.report._fmt import fmt_num, key_figures, metric, num
from loadgate.report._html import banner, page, table
from loadgate.report.html import DIST_METRICS, distribution_chart, mode_lines
from loadgate.result.model import Result

__all__ = ["render_compare_html"]

#: compare's verdict → banner colour (a regression is the one that fails a build)
_BANNER = {"regression": "fail", "improvement": "pass", "no change": "pass"}


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == 0:
        return "–"
    return f"{100.0 * (b - a) / a:+.1f} %"


def _tail(result: Result, name: str) -> tuple[float | None, float | None, float | None]:
    s = metric(result, name)
    return (num(s.p50), num(s.p99), num(s.p999)) if s is not None else (None, None, None)


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
        ]
        for label, r in zip(labels, (base, cand), strict=True)
    ]
    body.append(table(["run", "verdict", "commit", "started", "profile"], rows))
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
    for name, _ in DIST_METRICS:
        for stat, (a, b) in zip(
            ("p50", "p99", "p999"),
            zip(_tail(base, name), _tail(cand, name), strict=True),
            strict=True,
        ):
            fig_rows.append(
                [escape(f"{name}.{stat}"), fmt_num(a, "ms"), f"{fmt_num(b, 'ms')} ({_delta(a, b)})"]
            )
    body.append("<h2>Figures</h2>" + table(["figure", labels[0], labels[1]], fig_rows))
    body.append(
        '<p class="note">Differences here are descriptive; whether one is significant is '
        "<code>loadgate compare</code>'s verdict.</p>"
    )
    return page(title, body)
