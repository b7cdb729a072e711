"""The control group, placement and send lag in the HTML and Markdown reports.

``v1_control_run.json`` is a real ``phase2-gate`` run (reference gateway, kernel
timestamps, a 5 % control group, CPU placement); ``v1_smoke_run.json`` is a result
from before any of these were recorded and must render as before.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from loadgate.report import render_compare_html, render_html, render_markdown
from loadgate.report._fmt import fmt_num
from loadgate.report._harness import CONTROL_LABEL, harness_rows, latency_rows
from loadgate.result import Result
from loadgate.result.io import load_run_result
from loadgate.result.model import PlacementFigures
from tests.support.paths import DATA


@pytest.fixture(scope="module")
def control_run() -> Result:
    return load_run_result(DATA / "v1_control_run.json")


@pytest.fixture(scope="module")
def old_run() -> Result:
    return load_run_result(DATA / "v1_smoke_run.json")


class _Tables(HTMLParser):
    """Every table of a page as rows of cell texts (tags stripped)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> list[list[list[str]]]:
    p = _Tables()
    p.feed(page)
    return p.tables


def kv_of(page: str, first_key: str) -> dict[str, str]:
    (table,) = [t for t in tables(page) if t and t[0][0] == first_key]
    return {row[0]: row[1] for row in table}


def md_rows(md: str, header: str) -> list[list[str]]:
    lines = md.splitlines()
    i = lines.index(header)
    out = []
    for line in lines[i + 4 :]:
        if not line.startswith("|"):
            break
        out.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return out


# ------------------------------------------------------------------ shared rows


def test_latency_rows_put_the_control_row_beside_the_total(control_run: Result) -> None:
    rows = latency_rows(control_run, ["overhead_ms", "ttft_overhead_ms"])
    assert [(r.metric, r.label) for r in rows] == [
        ("overhead_ms", "all"),
        ("overhead_ms", CONTROL_LABEL),
        ("overhead_ms", "stream"),
        ("overhead_ms", "non-stream"),
        # ttft exists for streams only: the stream row would repeat the total
        ("ttft_overhead_ms", "all"),
        ("ttft_overhead_ms", CONTROL_LABEL),
    ]
    control = control_run.harness.control
    assert control is not None
    assert rows[1].control and rows[1].summary == control.metrics["overhead_ms"]
    assert not any(r.control for r in latency_rows(control_run, ["overhead_ms"], total=False)[:2])


def test_harness_rows_of_a_control_run(control_run: Result) -> None:
    rows = dict(harness_rows(control_run))
    assert list(rows) == [
        "timestamps",
        "send lag (ms)",
        "control group",
        "control group overhead (ms)",
        "CPUs",
        "in flight / load.concurrency",
    ]
    assert rows["timestamps"].startswith("kernel (client kernel, stub kernel): arrival times")
    assert rows["send lag (ms)"] == (
        "p50 0.187 / p99 1.422 / max 28.41 "
        "(closed loop: from the worker's previous response to its next send)"
    )
    assert rows["control group"].startswith("375 requests, 0 failed (5.0 % beside the load)")
    # 0.072 / 2.307 = 3.12 %: the floor is a small share of what the gateway costs
    assert rows["control group overhead (ms)"] == (
        "p50 0.019 / p99 0.072 / max 0.102 (n=375); its p99 is 3.1 % of the gateway's "
        "overhead p99 (2.307 ms)"
    )
    assert rows["CPUs"].startswith("harness 0 · stub 0 · gateway 1: gateway on CPU 1")
    assert rows["in flight / load.concurrency"] == "0.9992"


def test_harness_rows_say_unpinned_unknown_and_open_loop(control_run: Result) -> None:
    r = control_run.model_copy(deep=True)
    r.harness.placement = PlacementFigures(harness=None, stub=[1], gateway_known=False)
    r.profile = {**r.profile, "load": {**r.profile["load"], "rate": 100.0}}
    rows = dict(harness_rows(r))
    assert rows["CPUs"] == (
        "harness not pinned · stub 1 · gateway unknown (not launched by loadgate)"
    )
    assert rows["send lag (ms)"].endswith("(open loop: actual − scheduled send)")


def test_harness_rows_of_an_old_result(old_run: Result) -> None:
    assert harness_rows(old_run) == [("send lag (ms)", "–")]
    assert latency_rows(old_run, ["overhead_ms"], modes=False)[0].label == "all"
    assert not any(r.control for r in latency_rows(old_run, ["overhead_ms", "e2e_ms"]))


# ------------------------------------------------------------------ HTML


def test_html_cards_carry_the_control_row_after_the_modes(control_run: Result) -> None:
    page = render_html(control_run)
    control = control_run.harness.control
    assert control is not None
    cards = [t for t in tables(page) if t and t[0][:2] == ["mode", "count"]]
    assert len(cards) == 3  # overhead, TTFT overhead, e2e
    for card, name in zip(cards, ("overhead_ms", "ttft_overhead_ms", "e2e_ms"), strict=True):
        s = control.metrics[name]
        assert card[-1] == [
            CONTROL_LABEL,
            *(fmt_num(v) for v in (s.count, s.p50, s.p90, s.p99, s.p999, s.max)),
        ]
        assert [row[0] for row in card[1:-1]] == (
            ["stream", "non-stream"] if name != "ttft_overhead_ms" else ["stream"]
        )
    assert page.count('class="floor"') >= 3 + 3  # three cards, three split cells


def test_html_split_has_a_control_column(control_run: Result) -> None:
    (split,) = [t for t in tables(render_html(control_run)) if t and t[0][0] == "part"]
    assert split[0] == ["part", "stream", "non-stream", "all", CONTROL_LABEL]
    assert split[3] == [
        "overhead (= ingress + egress)",
        "0.142 / 2.319",
        "0.154 / 2.295",
        "0.149 / 2.307",
        "0.019 / 0.072",
    ]


def test_html_harness_section(control_run: Result) -> None:
    rows = kv_of(render_html(control_run), "timestamps")
    assert list(rows)[:3] == ["timestamps", "event-loop lag (ms)", "send lag (ms)"]
    assert dict(harness_rows(control_run)).items() <= rows.items()
    assert rows["event-loop lag (ms)"] == "p50 0.032 / p99 1.33 / max 33.25"


def test_html_of_an_old_result_has_no_control(old_run: Result) -> None:
    page = render_html(old_run)
    assert CONTROL_LABEL not in page and 'class="floor"' not in page
    (split,) = [t for t in tables(page) if t and t[0][0] == "part"]
    assert split[0] == ["part", "stream", "non-stream", "all"]
    rows = kv_of(page, "event-loop lag (ms)")
    assert rows["send lag (ms)"] == "–" and "CPUs" not in rows and "timestamps" not in rows


# ------------------------------------------------------------------ Markdown


def test_markdown_latency_and_harness_tables(control_run: Result) -> None:
    md = render_markdown(control_run)
    latency = md_rows(md, "#### Latency (ms)")
    assert [(r[0], r[1]) for r in latency] == [
        ("`overhead_ms`", "all"),
        ("`overhead_ms`", f"*{CONTROL_LABEL}*"),
        ("`ttft_overhead_ms`", "all"),
        ("`ttft_overhead_ms`", f"*{CONTROL_LABEL}*"),
        ("`e2e_ms`", "all"),
        ("`e2e_ms`", f"*{CONTROL_LABEL}*"),
    ]
    assert latency[1][2:] == ["375", "0.019", "0.046", "0.072", "0.102", "0.102"]
    assert latency[0][5] == "2.307"  # the gateway's p99, right above its floor
    assert f"*{CONTROL_LABEL}*: the same-run control group" in md
    harness = dict((r[0], r[1]) for r in md_rows(md, "#### Harness"))
    assert harness == dict(harness_rows(control_run))


def test_markdown_of_an_old_result(old_run: Result) -> None:
    md = render_markdown(old_run)
    assert [r[1] for r in md_rows(md, "#### Latency (ms)")] == ["all", "all", "all"]
    assert CONTROL_LABEL not in md
    assert "#### Harness" not in md  # nothing it would show was recorded
    assert md.endswith("\n") and not md.endswith("\n\n")


# ------------------------------------------------------------------ the compare page


def test_compare_page_shows_each_runs_floor(control_run: Result, old_run: Result) -> None:
    busier = control_run.model_copy(deep=True)
    assert busier.harness.control is not None
    busier.harness.control.metrics["overhead_ms"].p99 = 0.9
    page = render_compare_html(control_run, busier, verdict="machine changed")
    assert 'data-verdict="machine changed"' in page and 'class="verdict invalid"' in page
    (runs,) = [t for t in tables(page) if t and t[0][0] == "run"]
    assert runs[0][-1] == "control overhead p99 (floor)"
    assert [r[-1] for r in runs[1:]] == ["0.072 ms (n=375)", "0.9 ms (n=375)"]
    (figures,) = [t for t in tables(page) if t and t[0][0] == "figure"]
    rows = {r[0]: r[1:] for r in figures[1:]}
    assert rows["control.overhead_ms.p99"] == ["0.072 ms", "0.9 ms (+1150.0 %)"]
    assert rows["control.e2e_ms.p50"] == ["200.2 ms", "200.2 ms (+0.0 %)"]
    assert "A change that the floor moved with, the same way, by at least 50 % of it" in page
    # old results: no control group on either side, the page is as before
    old = render_compare_html(old_run, old_run)
    assert "control." not in old and 'class="floor"' not in old
    (runs,) = [t for t in tables(old) if t and t[0][0] == "run"]
    assert [r[-1] for r in runs[1:]] == ["–", "–"]
