"""Revoked keys on their way to the auth check: in this process, or to every worker over Redis.

``POST /admin/keys/revoke`` hands a key to :meth:`Revocations.revoke`. Without Redis the
key lands in this process after ``--revoke-propagation-ms``. With ``--redis-url`` it is
published on :data:`CHANNEL`; every worker process (this one included) is subscribed
from :meth:`Revocations.start` — before the gateway announces itself, so no revocation
is missed — and lands the key when the message arrives, after the same delay (the
defect switch: a slow consumer). The admin call returns once Redis took the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

__all__ = ["CHANNEL", "Revocations"]

CHANNEL = "reference_gateway:revocations"
log = logging.getLogger("reference_gateway")


class Revocations:
    def __init__(self, land: Callable[[str], None], delay_s: float, redis_url: str | None) -> None:
        self._land_now = land
        self._delay_s = delay_s
        self._url = redis_url
        self._client: aioredis.Redis | None = None
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> None:
        if self._url is None:
            return
        self._client = aioredis.from_url(self._url)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(CHANNEL)
        self._listener = asyncio.get_running_loop().create_task(self._listen(self._pubsub))

    async def revoke(self, key: str) -> None:
        if self._client is None:
            self._land(key)
        else:
            await self._client.publish(CHANNEL, key)

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            data = message.get("data")
            if message.get("type") == "message" and isinstance(data, bytes):
                self._land(data.decode("utf-8", "replace"))

    def _land(self, key: str) -> None:
        if self._delay_s <= 0:
            self._land_now(key)
            return
        handle: asyncio.TimerHandle | None = None

        def land() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self._land_now(key)

        handle = asyncio.get_running_loop().call_later(self._delay_s, land)
        self._timers.add(handle)

    async def close(self) -> None:
        for handle in self._timers:
            handle.cancel()
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()
