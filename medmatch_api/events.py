"""Matching events across every API process, through PostgreSQL LISTEN/NOTIFY.

A process that decides something (a lookup, a review, a merge, a split, a run started or
finished) NOTIFYs the `medmatch_events` channel; every process LISTENs on one connection of
its own and fans each event out to its WebSocket clients. Events carry ids and decisions,
never patient data.

Publishing does not wait: a request hands its event to a publisher thread, which sends
whatever has queued up in one statement, in order, on a connection of its own in autocommit
mode (one round trip; through the engine's pool it took three and SQLAlchemy's result
machinery, per lookup under load).

Listening: a process LISTENs to the events channel only while one of its WebSocket clients
is subscribed (every NOTIFY otherwise woke every API process and its PostgreSQL backend
for nobody: 4 of each per lookup with 4 workers). Token revocations
(`access.TOKENS_CHANNEL`) are heard all the time, on a connection of their own, and tell
the process's token cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg

from medmatch.mpi.access import TOKENS_CHANNEL

CHANNEL = "medmatch_events"
QUEUE_SIZE = 1000
RECONNECT_S = 1.0
LISTEN_WAIT_S = 5.0  # a subscriber waits this long at most for the listener
BATCH = 500  # events sent in one transaction at most
log = logging.getLogger(__name__)
_NOTIFY_ALL = (
    "SELECT pg_notify(%s, p) FROM unnest(CAST(%s AS text[])) WITH ORDINALITY AS e(p, n) ORDER BY n"
)


class EventBus:
    def __init__(
        self, libpq_url: str, on_tokens_changed: Callable[[], None] = lambda: None
    ) -> None:
        self.libpq_url = libpq_url
        self.on_tokens_changed = on_tokens_changed
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()
        self._tokens_task: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._events_ready = asyncio.Event()
        self._outbox: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._publisher: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- publishing (any thread) ---------------------------------------------------------
    def publish(self, event_type: str, **ids: Any) -> None:
        """Queue an event for every process; returns at once."""
        self._outbox.put(json.dumps({"type": event_type, **ids}, default=str))
        if self._publisher is None:
            with self._lock:
                if self._publisher is None:
                    self._publisher = threading.Thread(
                        target=self._send_queued, name="medmatch-events", daemon=True
                    )
                    self._publisher.start()

    def flush(self, timeout_s: float = 5.0) -> None:
        """Send what is queued and stop the publisher (a later publish starts another)."""
        with self._lock:
            publisher, self._publisher = self._publisher, None
            if publisher is not None:
                self._outbox.put(None)
                publisher.join(timeout_s)

    def _send_queued(self) -> None:
        connection: psycopg.Connection[Any] | None = None  # this thread's own
        while True:
            first = self._outbox.get()
            payloads = [] if first is None else [first]
            done = first is None
            while not done and len(payloads) < BATCH:
                try:
                    more = self._outbox.get_nowait()
                except queue.Empty:
                    break
                done = more is None
                if more is not None:
                    payloads.append(more)
            if payloads:
                connection = self._send(connection, payloads)
            if done:
                if connection is not None:
                    connection.close()
                return

    def _send(
        self, connection: psycopg.Connection[Any] | None, payloads: list[str]
    ) -> psycopg.Connection[Any] | None:
        """Send `payloads`; the connection to send the next ones on (None: connect afresh)."""
        try:
            if connection is None or connection.closed:
                connection = psycopg.connect(self.libpq_url, autocommit=True)
            connection.execute(_NOTIFY_ALL, (CHANNEL, payloads))
            return connection
        except Exception:  # an event lost must never fail the change it reports
            log.warning("could not publish %d events", len(payloads), exc_info=True)
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
            return None

    # -- listening (the event loop) ------------------------------------------------------
    async def start(self) -> None:
        self._tokens_task = asyncio.create_task(self._listen(TOKENS_CHANNEL, asyncio.Event()))

    async def stop(self) -> None:
        await asyncio.to_thread(self.flush)
        for task in (self._tokens_task, self._events_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _listen(self, channel: str, ready: asyncio.Event) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.libpq_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {channel}")
                    if channel == TOKENS_CHANNEL:
                        self.on_tokens_changed()  # a revocation may have passed unheard
                    ready.set()
                    async for note in conn.notifies():
                        if channel == TOKENS_CHANNEL:
                            self.on_tokens_changed()
                        else:
                            self._fan_out(json.loads(note.payload))
            except asyncio.CancelledError:
                raise
            except Exception:
                ready.clear()
                log.warning("%s listener lost its connection; reconnecting", channel, exc_info=True)
                await asyncio.sleep(RECONNECT_S)

    def _fan_out(self, event: dict[str, Any]) -> None:
        for subscriber in list(self._subscribers):
            if subscriber.full():  # a client that stopped reading loses its oldest event
                subscriber.get_nowait()
            subscriber.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        """A queue of the events from now on: it returns once this process is listening, so
        nothing published after it is missed (unless the database is unreachable for
        LISTEN_WAIT_S: the queue then fills once the listener reconnects)."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        if self._events_task is None or self._events_task.done():
            self._events_ready.clear()
            self._events_task = asyncio.create_task(self._listen(CHANNEL, self._events_ready))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._events_ready.wait(), LISTEN_WAIT_S)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
            if not self._subscribers and self._events_task is not None:
                task, self._events_task = self._events_task, None
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
