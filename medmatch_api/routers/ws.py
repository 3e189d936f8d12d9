"""WebSockets: one batch run's progress (/ws/jobs/{job_id}) and every matching event
(/ws/events). The token comes in the Authorization header or, for browsers, as `token`."""

from __future__ import annotations

import asyncio
import contextlib
import re

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from medmatch.errors import NotFoundError
from medmatch.mpi.access import Principal
from medmatch_api.batch import TERMINAL, run_progress
from medmatch_api.context import ApiContext
from medmatch_api.schemas import JOB_ID

router = APIRouter(tags=["websockets"])
POLL_S = 0.5
CLOSE_NOT_FOUND = 4404


def _principal(websocket: WebSocket, context: ApiContext) -> Principal | None:
    header = websocket.headers.get("authorization", "")
    token = (
        header[7:] if header.lower().startswith("bearer ") else websocket.query_params.get("token")
    )
    return context.tokens.verify(token) if token else None


async def _admit(websocket: WebSocket, *, accept: bool = True) -> ApiContext | None:
    """Accept a reader (or leave it to the caller); refuse anyone else before the handshake
    completes (HTTP 403)."""
    context: ApiContext = websocket.app.state.context
    who = await asyncio.to_thread(_principal, websocket, context)
    if who is None or not who.may("read"):
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION)
        return None
    if accept:
        await websocket.accept()
    return context


@router.websocket("/ws/jobs/{job_id}")
async def job_progress(websocket: WebSocket, job_id: str) -> None:
    """Every progress event of the run so far (replayed for a late client), then each new
    one as it is logged, then a final message (completed or failed) and a clean close."""
    context = await _admit(websocket)
    if context is None:
        return
    batch = context.batch
    well_formed = re.fullmatch(JOB_ID, job_id) is not None
    try:
        if not well_formed:  # never sent to Dagster's storage as a query, nor echoed
            raise NotFoundError("batch job", "(malformed id)")
        await asyncio.to_thread(batch.status, job_id)
    except NotFoundError:
        answer = {"job_id": job_id} if well_formed else {}
        await websocket.send_json({**answer, "error": "no such batch job"})
        await websocket.close(code=CLOSE_NOT_FOUND)
        return
    cursor = None
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            state = await asyncio.to_thread(batch.status, job_id)
            events, cursor = await asyncio.to_thread(batch.progress_after, job_id, cursor)
            for event in events:
                message = state.model_copy(
                    update={
                        "status": "running",
                        "stage": event.stage,
                        "total_records": event.total_records,
                        "processed_records": run_progress(state.job_type, event),
                        "matched_pairs": event.matched_pairs,
                    }
                )
                await websocket.send_json(message.model_dump(mode="json"))
            if state.status in TERMINAL:
                await websocket.send_json(state.model_dump(mode="json"))
                await websocket.close()
                return
            await asyncio.sleep(POLL_S)


@router.websocket("/ws/events")
async def events(websocket: WebSocket) -> None:
    """Lookups, review assignments and resolutions, merges, splits, runs started and
    finished, from every API process (PostgreSQL LISTEN/NOTIFY). Ids only."""
    context = await _admit(websocket, accept=False)
    if context is None:
        return
    async with context.events.subscribe() as queue:
        # accepted once this process listens: a client that sees the handshake complete
        # misses no event published after it
        await websocket.accept()
        receiver = asyncio.create_task(websocket.receive())
        try:
            while True:
                getter = asyncio.create_task(queue.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiver in done:
                    getter.cancel()
                    if receiver.result()["type"] == "websocket.disconnect":
                        return
                    receiver = asyncio.create_task(websocket.receive())  # ignore client chatter
                    continue
                await websocket.send_json(getter.result())
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            receiver.cancel()
