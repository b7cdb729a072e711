"""Real-time streams: per-token delay, client arrival of token k − the stub's write of it.

Both ends are CLOCK_MONOTONIC: the client's arrival of token k is the kernel's
receive stamp of the read that completed it (docs/timestamps.md); the stub's
write of token k is derived, not recorded one by one (docs/checks.md, "Real-time
streams", says why). The stub writes token k at ``nominal_k = t_sched_first + k·itl``
or later, never later than ``nominal_k + dev`` where ``dev`` is the largest lag
behind that schedule any of the stream's writes had (the ledger's
``stream_dev_us``, measured by the stub at each write). The exact stamps of the
first and last writes bound it too. So the derived write time

    w_k = min(max(nominal_k, t_first_write), t_last_write)

is never later than the true one, and at most ``dev`` earlier: a delay computed
from it is an *over*-estimate by at most ``dev`` (a gateway never looks better
than it is), and ``dev`` is reported beside the figure.

A stream is **buffered** when its tokens were compressed in time on the way: it
has two or more tokens, the stub spent at least :data:`MIN_SPAN_NS` writing them
(``t_last_write - t_first_write``, exact stamps), and the client received them
over less than half that span. A gateway that holds the stream to the end
delivers every token in one read (arrival span ≈ 0): buffered. A relay that
merely adds a constant delay keeps the span: not buffered, its delay shows in
the percentiles instead.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIN_SPAN_NS", "StreamDelays", "stream_delays", "token_arrivals"]

#: Shorter write spans are not judged for buffering: a relay whose event loop is a few
#: ms late (any busy 2-core box) merges a short stream's tokens into one read without
#: holding anything back; 20 ms is ten times the loop lag a valid run allows at p99.
#: (Seen: 4 tokens 1 ms apart through the reference gateway, 18 of ~400 streams
#: "buffered" at a 2 ms minimum on a loaded machine.)
MIN_SPAN_NS = 20_000_000


@dataclass(frozen=True, slots=True)
class StreamDelays:
    """One stream's per-token delays (ns) and what they can be trusted to."""

    delays_ns: list[int]
    #: the derived write times are at most this much earlier than the true ones
    bound_ns: int
    buffered: bool


def token_arrivals(token_times: list[int], delta_tokens: list[int] | None) -> list[int]:
    """Arrival of each token: delta k's when deltas are tokens, else the delta completing it."""
    if delta_tokens is None:
        return token_times
    out: list[int] = []
    for t, through in zip(token_times, delta_tokens, strict=True):
        out += [t] * max(0, through - len(out))
    return out


def stream_delays(
    arrivals: list[int],
    t_sched_first: int,
    itl_ns: int,
    t_first_write: int,
    t_last_write: int,
    dev_ns: int,
) -> StreamDelays | None:
    """Per-token delays of one stream; None when the stub's side is not known."""
    if not arrivals or t_sched_first <= 0 or t_first_write <= 0 or t_last_write < t_first_write:
        return None
    delays = []
    for k, arrived in enumerate(arrivals):
        written = min(max(t_sched_first + k * itl_ns, t_first_write), t_last_write)
        delays.append(arrived - written)
    span_written = t_last_write - t_first_write
    span_arrived = arrivals[-1] - arrivals[0]
    buffered = (
        len(arrivals) >= 2 and span_written >= MIN_SPAN_NS and 2 * span_arrived < span_written
    )
    return StreamDelays(delays, dev_ns, buffered)
