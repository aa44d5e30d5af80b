"""Every instance's dashboard shows the whole fleet: live calls, history and live events.

Each instance keeps its own :class:`~getpatter.dashboard.store.MetricsStore` (and writes the call logs of
the calls it runs); this module makes every store a replica of the fleet's:

* **Events.** Every change a store makes itself (its tap) is appended to the stream
  ``{prefix}:dash:events`` (trimmed to about :data:`STREAM_LEN` entries) with the instance's id. Every
  instance reads the stream and applies the other instances' events to its store, inside
  :meth:`~getpatter.dashboard.store.MetricsStore.applying_remote` — so its SSE clients see them live and
  they are not shared back.
* **Live calls.** ``{prefix}:dash:live:{call_id}`` holds the latest snapshot of a live call (TTL
  :data:`~getpatter.fleet.forward.CALL_TTL_S`), deleted when the call ends.
* **History.** ``{prefix}:dash:history`` is the list of the last ``max_calls`` finished calls (newest first).

An instance that joins loads the live snapshots and the history, then follows the stream from where it
was. Writes go through :meth:`~getpatter.fleet.redis_link.RedisLink.write` in order: while Redis is away
they are buffered (bounded) and replayed when it is back; then the instance re-shares its live calls, which
a restarted Redis may have lost.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, Final

from getpatter.fleet.forward import CALL_TTL_S
from getpatter.fleet.redis_link import is_connection_error

if TYPE_CHECKING:
    from getpatter.dashboard.store import MetricsStore, Record
    from getpatter.fleet.redis_link import Op, RedisLink

log = logging.getLogger("getpatter.fleet")

STREAM_LEN: Final = 5000
#: Ids of finished calls already pushed to the history (to push each once), at most this many.
_PUSHED_MEMORY: Final = 4096


class DashboardMirror:
    def __init__(self, link: RedisLink, store: MetricsStore) -> None:
        self._link = link
        self._store = store
        self._me = link.instance_id
        self._stream = link.key("dash", "events")
        self._history = link.key("dash", "history")
        self._ops: asyncio.Queue[Op] = asyncio.Queue()
        self._pushed: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_id = "0-0"
        #: Events of other instances applied here.
        self.applied = 0

    def live_key(self, call_id: str) -> str:
        return self._link.key("dash", "live", call_id)

    # ---- joining ------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Load the fleet's live calls and history, then follow its events and share this store's."""
        link = self._link
        newest: Any = await link.call(lambda r: r.xrevrange(self._stream, count=1), fallback=[])
        self._last_id = str(newest[0][0]) if newest else "0-0"
        history: Any = await link.call(lambda r: r.lrange(self._history, 0, -1), fallback=[])
        merged = self._store.merge_completed(_records(history))
        live: list[Record] = await link.call(self._live_snapshots, fallback=[])
        self._store.merge_active(live)
        if merged or live:
            log.info("dashboard: %d finished and %d live calls from the fleet", merged, len(live))
        self._store.taps.append(self._tap)
        link.on_back.append(self._reshare)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._write_loop(), name="getpatter-dashboard-share"),
            loop.create_task(self._read_loop(), name="getpatter-dashboard-follow"),
        ]

    async def _live_snapshots(self, r: Any) -> list[Record]:
        keys = [key async for key in r.scan_iter(match=self.live_key("*"), count=200)]
        values = await r.mget(keys) if keys else []
        return _records(v for v in values if v)

    async def close(self) -> None:
        if self._tap in self._store.taps:
            self._store.taps.remove(self._tap)
        if self._reshare in self._link.on_back:
            self._link.on_back.remove(self._reshare)
        await self._drain(timeout=2.0)
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _drain(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ops.join(), timeout)

    # ---- sharing this store's changes ---------------------------------------------------------------
    def _tap(self, kind: str, data: dict[str, Any]) -> None:
        call_ids = [str(i) for i in data.get("call_ids") or ()] or [str(data.get("call_id") or "")]
        entry: dict[Any, Any] = {"origin": self._me, "type": kind, "data": json.dumps(data, default=str)}
        finished: list[Record] = []
        for call_id in filter(None, call_ids):
            live = self._store.get_active(call_id)
            if live is not None:
                self._put(self._set_live(call_id, live))
                continue
            record = self._store.get_call(call_id)
            self._put(self._drop_live(call_id))
            if record is not None and record.get("ended_at") and call_id not in self._pushed:
                finished.append(record)
        if kind == "call_end" and finished:
            entry["record"] = json.dumps(finished[0], default=str)
        self._put(lambda r: r.xadd(self._stream, entry, maxlen=STREAM_LEN, approximate=True))
        for record in finished:
            self._remember_pushed(str(record["call_id"]))
            self._put(self._push_history(record))

    def _set_live(self, call_id: str, record: Record) -> Op:
        key, text = self.live_key(call_id), json.dumps(record, default=str)
        return lambda r: r.set(key, text, ex=CALL_TTL_S)

    def _drop_live(self, call_id: str) -> Op:
        key = self.live_key(call_id)
        return lambda r: r.delete(key)

    def _push_history(self, record: Record) -> Op:
        text, keep = json.dumps(record, default=str), self._store.max_calls

        async def push(r: Any) -> None:
            async with r.pipeline(transaction=True) as pipe:
                await pipe.lpush(self._history, text).ltrim(self._history, 0, keep - 1).execute()

        return push

    def _remember_pushed(self, call_id: str) -> None:
        self._pushed[call_id] = None
        while len(self._pushed) > _PUSHED_MEMORY:
            self._pushed.popitem(last=False)

    def _put(self, op: Op) -> None:
        self._ops.put_nowait(op)

    async def _write_loop(self) -> None:
        while True:
            op = await self._ops.get()
            try:
                await self._link.write(op)
            except Exception:
                log.exception("sharing a dashboard change failed")
            finally:
                self._ops.task_done()

    async def _reshare(self) -> None:
        """Redis is back (perhaps restarted, empty): share this instance's live calls again."""
        for record in self._store.get_active_calls():
            self._put(self._set_live(str(record["call_id"]), record))

    # ---- following the other instances --------------------------------------------------------------
    async def _read_loop(self) -> None:
        link = self._link
        while not link.closed:
            await link.wait_healthy()
            if link.closed:
                return
            try:
                got: Any = await link.blocking_client.xread(
                    {self._stream: self._last_id}, count=200, block=1000
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_connection_error(exc):
                    link.lost(exc)
                else:
                    log.exception("following the fleet's dashboard events failed")
                await asyncio.sleep(0.1)
                continue
            for _stream, entries in got or []:
                for entry_id, fields in entries:
                    self._last_id = entry_id
                    if fields.get("origin") != self._me:
                        self._apply(fields)

    def _apply(self, fields: dict[str, str]) -> None:
        try:
            kind, data = fields["type"], json.loads(fields["data"])
            record = json.loads(fields["record"]) if "record" in fields else None
        except (KeyError, ValueError):
            log.warning("dropped a malformed dashboard event from the fleet")
            return
        store = self._store
        with store.applying_remote():
            apply_event(store, kind, data, record)
        self.applied += 1
        call_id = str(data.get("call_id") or "")
        if call_id and store.get_active(call_id) is None:
            self._remember_pushed(call_id)  # finished where it ran, which pushed it to the history


def apply_event(store: MetricsStore, kind: str, data: dict[str, Any], record: Record | None) -> None:
    """Replay one change another instance's store made (its SSE ``type`` and ``data``) on ``store``."""
    call_id = str(data.get("call_id") or "")
    if kind == "call_initiated":
        store.record_call_initiated(data)
    elif kind == "call_start":
        store.record_call_start(data)
    elif kind == "transcript_line":
        store.record_transcript_line(call_id, str(data.get("role")), str(data.get("text")))
    elif kind == "turn_complete":
        store.record_turn(call_id, dict(data.get("turn") or {}))
    elif kind == "call_status":
        extra = {k: v for k, v in data.items() if k not in ("call_id", "status")}
        store.update_call_status(call_id, str(data.get("status")), **extra)
    elif kind == "call_end":
        final = dict(record or {"call_id": call_id})
        metrics = final.pop("metrics", None) or data.get("metrics")
        store.record_call_end(final, metrics)
    elif kind == "calls_deleted":
        store.delete_calls([str(i) for i in data.get("call_ids") or ()])


def _records(texts: Any) -> list[Record]:
    out: list[Record] = []
    for text in texts:
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("call_id"):
            out.append(value)
    return out
