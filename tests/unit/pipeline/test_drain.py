"""The drain figure's arithmetic: what the gateway held at SIGTERM, and what it lost."""

from __future__ import annotations

from typing import Any, cast

from loadgate.gateway.lifecycle import Gateway
from loadgate.histograms.recorder import Recorder
from loadgate.load.outcome import EngineOutcome, TailRequest
from loadgate.pipeline.window import RunState, drain_figures

MS = 1_000_000
TERM = 1000 * MS


class _Exited:
    async def wait(self, timeout_s: float) -> int:
        return 0


def _state(tail: list[TailRequest]) -> RunState:
    state = RunState()
    state.t_term = TERM
    state.outcome = EngineOutcome(Recorder(0), tail=tail)
    return state


async def test_only_forwarded_and_unfinished_requests_count_as_held() -> None:
    tail = [
        TailRequest(TERM - 5 * MS, TERM + 20 * MS, failed=False),  # held, finished: drained
        TailRequest(TERM - 5 * MS, 0, failed=True),  # held, then lost: a drop
        TailRequest(TERM - 9 * MS, TERM - 1 * MS, failed=False),  # done before SIGTERM
        TailRequest(0, 0, failed=True),  # never reached the stub: refused, not dropped
        TailRequest(TERM + 3 * MS, 0, failed=True),  # forwarded after SIGTERM, lost: refused
    ]
    gw = cast(Gateway, cast(Any, _Exited()))
    d = await drain_figures(_state(tail), gw, checked=True, stop_timeout_s=1)
    assert (d.checked, d.in_flight_at_term, d.dropped, d.refused) == (True, 2, 1, 2)
    assert (d.exit_code, d.ok) == (0, False)


async def test_no_sigterm_means_no_figure() -> None:
    state = _state([TailRequest(1, 0, failed=True)])
    state.t_term = 0
    state.stop_reason = "SIGINT"
    gw = cast(Gateway, cast(Any, _Exited()))
    d = await drain_figures(state, gw, checked=True, stop_timeout_s=1)
    assert not d.checked and d.reason == "run stopped: SIGINT" and d.dropped is None
