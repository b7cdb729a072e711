"""The request mix: which request goes next (DESIGN §4), decided by a seeded RNG.

A run's sequence of :class:`RequestSpec` is a pure function of the profile's
seed, the worker index and the run nonce, so two runs of one profile send the
same mix in the same order.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Mapping
from itertools import accumulate

from loadgate.client.observation import RequestSpec
from loadgate.probes.tenants import TenantMix

__all__ = ["EMBEDDING_MODEL", "ENDPOINTS", "RequestMix", "make_corr_id"]

ENDPOINTS = ("chat", "responses", "messages", "embeddings")
EMBEDDING_MODEL = "text-embedding-3-small"

KeyDraw = Callable[[random.Random], "tuple[str, str] | None"]


def make_corr_id(nonce: int, seq: int) -> int:
    """``(nonce << 32) | seq``: unique across runs that share one stub."""
    return ((nonce & 0x7FFFFFFF) << 32) | (seq & 0xFFFFFFFF)


class RequestMix:
    """Draws the next request of a run."""

    def __init__(
        self,
        *,
        endpoints: Mapping[str, float],
        stream_ratio: float,
        model: str,
        anthropic_model: str,
        prompt_tokens: int,
        max_tokens: int,
        stub_output_tokens: int,
        nonce: int,
        seed: int,
        draw_key: KeyDraw | None = None,
        extra_headers: tuple[tuple[str, str], ...] = (),
        tenants: TenantMix | None = None,
    ) -> None:
        """``tenants``: each request names an agent; a share names another tenant's."""
        names = [n for n, w in endpoints.items() if w > 0]
        if not names:
            raise ValueError("the endpoint mix has no positive weight")
        self._names = names
        self._cum = list(accumulate(endpoints[n] for n in names))
        self._stream_ratio = stream_ratio
        self._model = model
        self._anthropic_model = anthropic_model
        self._prompt_tokens = prompt_tokens
        self._max_tokens = max_tokens
        self._expect = min(stub_output_tokens, max_tokens)
        self._nonce = nonce
        self._rng = random.Random(seed)
        self._draw_key = draw_key
        self._extra = extra_headers
        self._tenants = tenants
        self.seq = 0

    def next(self) -> RequestSpec:
        self.seq += 1
        rng = self._rng
        if len(self._names) == 1:
            endpoint = self._names[0]
        else:
            endpoint = self._names[bisect.bisect_right(self._cum, rng.random() * self._cum[-1])]
        stream = endpoint != "embeddings" and rng.random() < self._stream_ratio
        if endpoint == "messages":
            model = self._anthropic_model
        elif endpoint == "embeddings":
            model = EMBEDDING_MODEL
        else:
            model = self._model
        auth = self._draw_key(rng) if self._draw_key is not None else None
        extra, cross = self._extra, False
        if self._tenants is not None:
            agent, cross = self._tenants.headers(rng, auth)
            if agent is not None:
                extra = (*extra, agent)
        return RequestSpec(
            corr=make_corr_id(self._nonce, self.seq),
            endpoint=endpoint,
            stream=stream,
            model=model,
            prompt_tokens=self._prompt_tokens,
            max_tokens=self._max_tokens,
            expect_tokens=0 if endpoint == "embeddings" else self._expect,
            auth=auth,
            extra_headers=extra,
            cross_tenant=cross,
        )
