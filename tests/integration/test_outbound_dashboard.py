"""Outbound calls on the dashboard from the dial on: live SSE events for every status callback, and the
final record in history, the call log on disk and the exports, for Twilio and Telnyx — answered or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from getpatter.dashboard.persistence import sanitize_call_id
from tests.integration.harness import NUMBER, PUBLIC_HOST, Harness, call_harness
from tests.integration.telnyx_harness import telnyx_harness
from tests.integration.test_dashboard_api import read_events
from tests.integration.test_outbound_telnyx import _answer, _dialled, _event
from tests.integration.test_outbound_twilio import _amd, _placed, _status

CALLEE = "+15550003333"


async def _until(predicate: Any, timeout: float = 10.0) -> Any:
    async def poll() -> Any:
        while not (value := predicate()):
            await asyncio.sleep(0.01)
        return value

    return await asyncio.wait_for(poll(), timeout)


class Board:
    """The server's own dashboard, read over HTTP like a browser does (SSE, history, exports)."""

    def __init__(self, phone: Any, server_url: str) -> None:
        self.token = phone.dashboard_token
        self.client = httpx.AsyncClient(
            base_url=server_url, timeout=10, headers={"Authorization": f"Bearer {self.token}"}
        )
        self.events: list[tuple[str, Any]] = []
        self._reader: asyncio.Task[None] | None = None

    async def listen(self, stop: str) -> None:
        self._reader = asyncio.create_task(
            read_events(self.client, f"/api/dashboard/events?token={self.token}", self.events, stop)
        )
        await _until(lambda: bool(self.events))  # ": connected": subscribed before the dial

    async def finished(self) -> list[tuple[str, Any]]:
        assert self._reader is not None
        await asyncio.wait_for(self._reader, 10)
        return [(k, d) for k, d in self.events if k != ":"]

    async def history(self) -> list[dict[str, Any]]:
        response = await self.client.get("/api/dashboard/calls")
        assert response.status_code == 200
        calls: list[dict[str, Any]] = response.json()
        return calls

    async def export(self, fmt: str) -> str:
        response = await self.client.get(f"/api/dashboard/export/calls?format={fmt}")
        assert response.status_code == 200
        return response.text

    async def aclose(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader
        await self.client.aclose()


def _metadata(root: Path, call_id: str) -> dict[str, Any]:
    [path] = list((root / "calls").rglob(f"{sanitize_call_id(call_id)}/metadata.json"))
    meta: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return meta


async def _check_unanswered(board: Board, root: Path, phone: Any, call_id: str, final: str) -> None:
    [call] = [c for c in await board.history() if c["call_id"] == call_id]
    assert call["status"] == final and call["direction"] == "outbound"
    assert (call["caller"], call["callee"]) == (NUMBER, CALLEE)
    assert call["metrics"]["cost"]["total"] == 0.0 and call["ended_at"] is not None
    assert (await board.client.get("/api/dashboard/active")).json() == []
    csv_rows = (await board.export("csv")).splitlines()
    assert any(row.startswith(call_id + ",") and ",outbound," in row for row in csv_rows)
    assert [c["status"] for c in json.loads(await board.export("json")) if c["call_id"] == call_id] == [final]
    await phone.flush_logs()
    meta = _metadata(root, call_id)
    assert meta["status"] == final and meta["direction"] == "outbound" and meta["turns"] == 0
    assert meta["callee"] == "***3333" and meta["cost"]["total"] == 0.0  # numbers masked by default
    # A restarted server shows it again (the call log is read back).
    again = type(phone.metrics_store)()
    assert again.hydrate(root) == 1
    assert again.get_call(call_id)["status"] == final  # type: ignore[index]


# -- Twilio --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("final", ["no-answer", "busy", "failed", "canceled"])
async def test_twilio_unanswered_call_is_on_the_dashboard_from_dial_to_final_record(
    final: str, tmp_path: Path
) -> None:
    async with call_harness(patter_kwargs={"persist": tmp_path}) as h:
        board = Board(h.phone, h.server.http_url)
        try:
            await board.listen(stop="")  # read until closed
            call_id = await h.phone.call(CALLEE)
            placed = await _placed(h.twilio)
            await _until(lambda: any(k == "call_initiated" for k, _ in board.events))
            active = (await board.client.get("/api/dashboard/active")).json()
            assert [(c["call_id"], c["status"]) for c in active] == [(call_id, "initiated")]
            await _status(h, placed, "initiated", 0)
            await _status(h, placed, "ringing", 1)
            await _status(h, placed, final, 2, CallDuration="0")
            await _status(h, placed, "ringing", 1)  # a late, stale callback moves nothing
            await _until(lambda: sum(k == "call_status" for k, _ in board.events) >= 3)
            await _check_unanswered(board, tmp_path, h.phone, call_id, final)
        finally:
            await board.aclose()
    live = [(k, d) for k, d in board.events if k not in (":", "")]
    assert live[0] == (
        "call_initiated",
        {
            "call_id": call_id,
            "caller": NUMBER,
            "callee": CALLEE,
            "direction": "outbound",
            "status": "initiated",
        },
    )
    assert [d["status"] for k, d in live if k == "call_status"] == ["initiated", "ringing", final]
    assert all(d["call_id"] == call_id for _, d in live)


async def test_twilio_answered_machine_call_streams_every_status_and_ends_with_its_metrics(
    tmp_path: Path,
) -> None:
    async with call_harness(patter_kwargs={"persist": tmp_path}) as h:
        board = Board(h.phone, h.server.http_url)
        try:
            await board.listen(stop="call_end")
            task = asyncio.create_task(h.phone.call(CALLEE, machine_detection=True, wait=True))
            placed = await _placed(h.twilio)
            await _status(h, placed, "initiated", 0)
            await _status(h, placed, "ringing", 1)
            call = await h.twilio.answer_call(placed.sid, h.server.http_url, PUBLIC_HOST)
            await _status(h, placed, "in-progress", 2)
            await call.wait_for_agent_audio(timeout=5)
            await _amd(h, placed, "machine_end_other")  # no voicemail message: hung up
            await call.wait_closed(timeout=5)
            await h.wait_ended()
            await _status(h, placed, "completed", 3, CallDuration="7")
            result = await asyncio.wait_for(task, 10)
            events = await board.finished()
            [record] = [c for c in await board.history() if c["call_id"] == placed.sid]
            await h.phone.flush_logs()
        finally:
            await board.aclose()
    kinds = [k for k, _ in events]
    assert kinds[0] == "call_initiated" and kinds[-1] == "call_end" and "call_start" in kinds
    statuses = [d for k, d in events if k == "call_status"]
    # The stream was read until call_end, which the media session's end brings before "completed".
    plain = [d["status"] for d in statuses if "answered_by" not in d]
    assert plain == ["initiated", "ringing", "in-progress"]
    assert [d["answered_by"] for d in statuses if "answered_by" in d] == ["machine"]
    assert record["status"] == "completed" and record["answered_by"] == "machine"
    assert record["direction"] == "outbound" and record["callee"] == CALLEE
    assert record["metrics"]["cost"]["telephony"] > 0  # a real, measured call
    assert result.outcome == "voicemail" and result.metrics is not None
    assert record["metrics"]["cost"]["total"] == result.metrics.cost.total
    assert _metadata(tmp_path, placed.sid)["status"] == "completed"


# -- Telnyx --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cause", "final"), [("timeout", "no-answer"), ("user_busy", "busy"), ("not_found", "failed")]
)
async def test_telnyx_unanswered_call_is_on_the_dashboard_from_dial_to_final_record(
    cause: str, final: str, tmp_path: Path
) -> None:
    async with telnyx_harness(patter_kwargs={"persist": tmp_path}) as h:
        board = Board(h.phone, h.server.http_url)
        try:
            await board.listen(stop="")
            call_id = await h.phone.call(CALLEE)
            call, _ = await _dialled(h)
            await _until(lambda: any(k == "call_initiated" for k, _ in board.events))
            await _event(h, "call.initiated", call, direction="outgoing")
            call.state = "hangup"
            await _event(h, "call.hangup", call, hangup_cause=cause, hangup_source="callee")
            await _until(lambda: sum(k == "call_status" for k, _ in board.events) >= 2)
            await _check_unanswered(board, tmp_path, h.phone, call_id, final)
        finally:
            await board.aclose()
    live = [(k, d) for k, d in board.events if k not in (":", "")]
    assert live[0][0] == "call_initiated" and live[0][1]["callee"] == CALLEE
    assert [d["status"] for k, d in live if k == "call_status"] == ["initiated", final]


async def test_telnyx_answered_call_goes_from_initiated_to_its_final_record() -> None:
    async with telnyx_harness(utterances=["Yes."], replies=["Great."]) as h:
        board = Board(h.phone, h.server.http_url)
        try:
            await board.listen(stop="call_end")
            task = asyncio.create_task(h.phone.call(CALLEE, wait=True))
            call, _ = await _dialled(h)
            await _answer(h, call)
            await call.wait_for_agent_audio(timeout=5)
            await call.wait_agent_quiet(quiet_ms=300, timeout=10)
            await call.hangup()
            await h.wait_ended()
            await _event(h, "call.hangup", call, hangup_cause="normal_clearing", hangup_source="callee")
            result = await asyncio.wait_for(task, 15)
            events = await board.finished()
            [record] = [c for c in await board.history() if c["call_id"] == call.call_control_id]
        finally:
            await board.aclose()
    kinds = [k for k, _ in events]
    assert kinds[0] == "call_initiated" and "call_start" in kinds and kinds[-1] == "call_end"
    assert [d["status"] for k, d in events if k == "call_status"][:2] == ["initiated", "in-progress"]
    assert record["status"] == "completed" and record["direction"] == "outbound"
    assert result.metrics is not None and record["metrics"]["cost"]["total"] == result.metrics.cost.total


__all__ = ["Harness"]
