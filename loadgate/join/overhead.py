"""The overhead formula, in one small place (DESIGN §2, docs/method.md "The figures").

For one request, from the client's timestamps (an Observation) and the stub's
ledger records of every upstream call the gateway made for it:

* ``overhead = (t_last_byte - t_intended) - Σ service`` where a call's service
  is ``t_last_write - t_recv``: all the time spent anywhere but inside the
  stub. With retries every attempt's own service is subtracted, so failed
  attempts' network time and the gateway's back-off count as overhead;
* ``ingress = t_recv(first call) - t_intended``;
* ``egress = t_last_byte - t_last_write(last call)``;
* ``ttft_overhead = (t_first_token - t_intended) - (t_first_write - t_recv)(last call)
  - Σ service(earlier calls)``.

``overhead`` and ``ttft_overhead`` are differences of *durations*, each taken on
one clock (the client's, the stub's): they hold with the stub on another machine.
``ingress`` / ``egress`` subtract a stub instant from a client instant, so they
are computed only when both share one clock (``same_clock``; see
:mod:`loadgate.join.stubs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from loadgate.client.observation import Observation

__all__ = ["Call", "Decomposition", "decompose"]

# (t_recv, t_first_write, t_last_write, t_sched_first, stream_dev_ns) of one upstream
# call; stream_dev_ns: a stream's largest write lateness behind its nominal schedule.
Call = tuple[int, int, int, int, int]


@dataclass(slots=True)
class Decomposition:
    """Nanosecond figures for one request; ``None`` where they don't apply."""

    e2e: int
    e2e_uncorrected: int
    overhead: int | None
    ingress: int | None
    egress: int | None
    ttft: int | None
    ttft_overhead: int | None


def _service(call: Call) -> int:
    t_recv, t_first, t_last = call[0], call[1], call[2]
    end = t_last or t_first or t_recv
    return max(0, end - t_recv)


def decompose(obs: Observation, calls: list[Call], *, same_clock: bool = True) -> Decomposition:
    """Per-request decomposition; ``calls`` sorted by ``t_recv`` (may be empty).

    ``same_clock`` False: some call was stamped by a stub on another clock, so
    ingress and egress are None.
    """
    e2e = obs.t_last_byte - obs.t_intended
    ttft = obs.t_first_token - obs.t_intended if obs.stream and obs.t_first_token else None
    if not calls:
        return Decomposition(e2e, obs.t_last_byte - obs.t_send, None, None, None, ttft, None)
    service = sum(_service(c) for c in calls)
    first, last = calls[0], calls[-1]
    overhead = max(0, e2e - service)
    ingress = egress = None
    if same_clock:
        ingress = max(0, first[0] - obs.t_intended)
        egress = max(0, obs.t_last_byte - (last[2] or last[1] or last[0]))
    ttft_overhead = None
    if ttft is not None and last[1]:
        earlier = service - _service(last)
        ttft_overhead = max(0, ttft - (last[1] - last[0]) - earlier)
    return Decomposition(
        e2e, obs.t_last_byte - obs.t_send, overhead, ingress, egress, ttft, ttft_overhead
    )
