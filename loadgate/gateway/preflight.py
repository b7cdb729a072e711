"""Preflight: is the gateway reachable at all? (seed 004, DESIGN §10 exit 70).

One unauthenticated ``GET`` of the gateway's base URL, exactly as given. The base
URL is the cheapest thing to ask: it needs no key, touches no upstream and no auth
cache (so it does not disturb the hit-rate window), and every HTTP server answers
it with *something*. Any HTTP answer — 200, 401, 403, 404 — proves the gateway is
up; real authentication is exercised by the load itself. Only a transport failure
(refused, timed out, unresolvable, reset) or a 5xx answer is ``DEP-DOWN``.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass

import aiohttp

from loadgate.errors import DepDownError

__all__ = ["PreflightResult", "preflight", "probe_url"]


@dataclass(frozen=True, slots=True)
class PreflightResult:
    url: str
    status: int
    elapsed_s: float


def probe_url(url: str) -> str:
    """The URL preflight GETs: the base URL, with ``/`` when it has no path."""
    return url if "/" in url.split("://", 1)[-1] else url + "/"


def _transport_reason(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno == errno.ECONNREFUSED:
            return "connection refused"
        return f"cannot connect ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed without an answer"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    return f"{type(exc).__name__}: {exc}".rstrip(": ")


async def preflight(url: str, timeout_s: float = 5.0) -> PreflightResult:
    """GET the base URL; return on any non-5xx answer, else raise :class:`DepDownError`."""
    target = probe_url(url)
    t0 = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout, trust_env=False) as session,
            session.get(target, allow_redirects=False) as resp,
        ):
            status = resp.status
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
        raise DepDownError(f"DEP-DOWN: {url} : {_transport_reason(exc, timeout_s)}") from exc
    if status >= 500:
        raise DepDownError(f"DEP-DOWN: {url} : HTTP {status} from gateway")
    return PreflightResult(url=url, status=status, elapsed_s=time.monotonic() - t0)
