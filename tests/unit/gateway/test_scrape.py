"""Selectors, sums over series, and reset-aware window deltas on fixed expositions."""

from __future__ import annotations

import pytest

from loadgate.errors import UsageError
from loadgate.gateway.scrape import Scraper, Selector, increase, parse_exposition

EXPO = """\
# HELP auth_cache_hits_total Auth LRU cache hits.
# TYPE auth_cache_hits_total counter
auth_cache_hits_total 90.0
auth_cache_hits_created 1.7e9
# HELP cache_total by outcome
# TYPE cache_total counter
cache_total{outcome="hit",tier="a"} 7.0
cache_total{outcome="hit",tier="b"} 3.0
cache_total{outcome="miss",tier="a"} 2.0
# HELP req_total requests
# TYPE req_total counter
req_total{route="chat",status="200"} 5.0
req_total{route="chat",status="401"} 1.0
req_total{route="messages",status="200"} 4.0
# HELP inflight gauge
# TYPE inflight gauge
inflight 3.0
"""


def expo(hits: float, misses: float) -> str:
    return (
        "# TYPE auth_cache_hits_total counter\n"
        f"auth_cache_hits_total {hits}\n"
        "# TYPE auth_cache_misses_total counter\n"
        f"auth_cache_misses_total {misses}\n"
    )


def test_selector_parse() -> None:
    assert Selector.parse("x_total") == Selector("x_total")
    assert Selector.parse('x_total{outcome="hit"}') == Selector("x_total", (("outcome", "hit"),))
    sel = Selector.parse(' x { a = "1", b="q\\"z" } ')
    assert sel == Selector("x", (("a", "1"), ("b", 'q"z')))
    assert str(Selector.parse('x{a="1",b="2"}')) == 'x{a="1",b="2"}'
    assert Selector.parse("x{}") == Selector("x")


@pytest.mark.parametrize("bad", ["", '{a="1"}', "x{a=1}", 'x{a="1"', 'x{a="1"} y', "9x"])
def test_selector_parse_errors_name_the_selector(bad: str) -> None:
    with pytest.raises(UsageError, match="Prometheus selector"):
        Selector.parse(bad)


def test_counter_matches_with_and_without_total_but_not_created() -> None:
    s = parse_exposition(EXPO)
    assert s.value(Selector.parse("auth_cache_hits_total")) == 90.0
    assert s.value(Selector.parse("auth_cache_hits")) == 90.0


def test_value_sums_matching_series() -> None:
    s = parse_exposition(EXPO)
    assert s.value(Selector.parse('cache_total{outcome="hit"}')) == 10.0
    assert s.value(Selector.parse('cache_total{outcome="hit",tier="b"}')) == 3.0
    assert s.value(Selector.parse("req_total")) == 10.0
    assert s.value(Selector.parse('req{status="200"}')) == 9.0
    assert s.value(Selector.parse("inflight")) == 3.0


def test_no_match_is_none() -> None:
    s = parse_exposition(EXPO)
    assert s.value(Selector.parse("nope_total")) is None
    assert s.value(Selector.parse('req_total{route="embeddings"}')) is None


def test_increase_with_reset_adds_post_reset_value() -> None:
    assert increase([10, 15, 20]) == 10
    # 20 → 3: the counter restarted; 3 counted since the restart, then +4.
    assert increase([10, 20, 3, 7]) == 10 + 3 + 4
    assert increase([5]) is None
    assert increase([None, None]) is None
    # A labelled series that appears mid-window started from 0.
    assert increase([None, 4, 6]) == 6


def scraper_with(points: list[tuple[float, str]]) -> Scraper:
    sc = Scraper(
        "http://127.0.0.1:9/metrics",
        {"h": "auth_cache_hits_total", "m": "auth_cache_misses_total"},
        1.0,
    )
    for t, text in points:
        sc.record(parse_exposition(text), t=t)
    return sc


def test_window_deltas_exclude_warmup() -> None:
    sc = scraper_with(
        [(0.0, expo(0, 0)), (1.0, expo(5, 50)), (2.0, expo(95, 60)), (3.0, expo(185, 70))]
    )
    sc.mark_start_at(1)  # warm-up's 5 hits / 50 misses are outside the window
    assert sc.deltas() == {"h": 180.0, "m": 20.0}
    assert sc.hit_rate("h", "m") == pytest.approx(0.9)
    sc.mark_end_at(2)
    assert sc.deltas() == {"h": 90.0, "m": 10.0}


def test_window_deltas_across_a_gateway_restart() -> None:
    sc = scraper_with([(0.0, expo(100, 10)), (1.0, expo(150, 20)), (2.0, expo(30, 5))])
    assert sc.deltas() == {"h": 50.0 + 30.0, "m": 10.0 + 5.0}


def test_hit_rate_series_per_interval_none_without_traffic() -> None:
    sc = scraper_with(
        [(10.0, expo(0, 0)), (12.0, expo(9, 1)), (14.0, expo(9, 1)), (16.0, expo(12, 2))]
    )
    assert sc.hit_rate_series("h", "m") == [(2.0, 0.9), (4.0, None), (6.0, 0.75)]
    assert [t for t, _ in sc.series()] == [0.0, 2.0, 4.0, 6.0]


def test_missing_selector_gives_none_rate() -> None:
    sc = scraper_with([(0.0, EXPO), (1.0, EXPO)])
    assert sc.deltas() == {"h": 0.0, "m": None}
    assert sc.hit_rate("h", "m") is None


async def test_scrape_failures_are_counted_not_raised() -> None:
    sc = Scraper("http://127.0.0.1:9/metrics", {"h": "x"}, 1.0, timeout_s=2.0)
    try:
        await sc.mark_start()
        await sc.mark_end()
    finally:
        await sc.stop()
    assert sc.errors == 2
    assert sc.last_error is not None
    assert sc.deltas() == {"h": None}
