"""Matching events across every API process, through PostgreSQL LISTEN/NOTIFY.

A process that decides something (a lookup, a review, a merge, a split, a run started or
finished) NOTIFYs the `medmatch_events` channel; every process LISTENs on one connection of
its own and fans each event out to its WebSocket clients. Events carry ids and decisions,
never patient data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from sqlalchemy import Engine, text

CHANNEL = "medmatch_events"
QUEUE_SIZE = 1000
RECONNECT_S = 1.0
log = logging.getLogger(__name__)


class EventBus:
    def __init__(self, engine: Engine, libpq_url: str) -> None:
        self.engine, self.libpq_url = engine, libpq_url
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()

    # -- publishing (any thread) ---------------------------------------------------------
    def publish(self, event_type: str, **ids: Any) -> None:
        payload = json.dumps({"type": event_type, **ids}, default=str)
        try:
            with self.engine.connect() as conn:
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {
                        "channel": CHANNEL,
                        "payload": payload,
                    },
                )
                conn.commit()
        except Exception:  # an event lost must never fail the change it reports
            log.warning("could not publish a %s event", event_type, exc_info=True)

    # -- listening (the event loop) ------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.libpq_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    async for note in conn.notifies():
                        self._fan_out(json.loads(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                self.listening.clear()
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
                await asyncio.sleep(RECONNECT_S)

    def _fan_out(self, event: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            if queue.full():  # a client that stopped reading loses its oldest event
                queue.get_nowait()
            queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
