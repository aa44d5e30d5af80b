"""Carrier callbacks about a placed call go to the instance that placed it.

Behind a load balancer the carrier's status, answering-machine and recording webhooks of a call land on
any instance, but the call's ``wait=True`` result, ``on_machine_detection`` and voicemail message live in
the process that ran ``phone.call()``. So:

* the placing instance records ``{prefix}:call:{call_id}:owner = <instance id>`` (TTL
  :data:`CALL_TTL_S`) when it registers the call;
* :class:`ForwardProgress` (ASGI middleware) reads each webhook at one of the carrier's
  :meth:`~getpatter.carriers.base.Carrier.progress_paths`, asks the carrier which call it names, and when
  another instance owns that call publishes the request (method, path, query, headers, body) to the
  owner's :class:`~getpatter.fleet.inbox.Inbox` and answers the carrier with the owner's response;
* the owner runs the request through its own app (signature check included: every instance has the same
  public URL and carrier secret), exactly as if the carrier had sent it there, and pushes the response to
  ``{prefix}:reply:{request id}`` (TTL :data:`REPLY_TTL_S`).

The server stays carrier-neutral: it never parses a webhook. When the owner is unknown, gone or silent
past :data:`FORWARD_TIMEOUT_S`, or Redis is away, the instance that received the webhook handles it itself
(as a single instance would).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from getpatter.fleet.redis_link import is_connection_error

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from getpatter.fleet.inbox import Inbox
    from getpatter.fleet.redis_link import RedisLink

log = logging.getLogger("getpatter.fleet")

#: How long an owner key (and other per-call keys) lives: longer than any call.
CALL_TTL_S: Final = 6 * 3600
REPLY_TTL_S: Final = 60
FORWARD_TIMEOUT_S: Final = 5.0
#: Webhook bodies read for routing at most; larger ones go to the local app (which refuses them).
MAX_ROUTED_BODY: Final = 256 * 1024
#: ASGI scope extension marking a request another instance forwarded here (never forwarded again).
FORWARDED: Final = "getpatter.forwarded"

CallIdOf = Callable[[str, bytes], str]


class WebhookRouter:
    """Owner keys, and forwarding of webhooks to (and from) their owner."""

    def __init__(self, link: RedisLink, inbox: Inbox) -> None:
        self._link = link
        self._inbox = inbox
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The whole app, which forwarded requests are run through on the owner (set by the member).
        self.app: ASGIApp | None = None
        #: Webhooks this instance forwarded to their owner / handled for another instance.
        self.forwarded = 0
        self.served = 0

    def owner_key(self, call_id: str) -> str:
        return self._link.key("call", call_id, "owner")

    def remember(self, call_id: str) -> None:
        """This instance placed ``call_id`` (called as the registry registers it)."""
        key, me = self.owner_key(call_id), self._link.instance_id
        write = self._link.write(lambda r: r.set(key, me, ex=CALL_TTL_S))
        task = asyncio.get_running_loop().create_task(write)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def owner_of(self, call_id: str) -> str | None:
        owner = await self._link.call(lambda r: r.get(self.owner_key(call_id)), fallback=None)
        return str(owner) if owner else None

    async def route(self, call_id: str, scope: Scope, body: bytes) -> dict[str, Any] | None:
        """The owner's response to this webhook, or ``None``: handle it here."""
        owner = await self.owner_of(call_id)
        if owner is None or owner == self._link.instance_id:
            return None
        request_id = secrets.token_hex(12)
        message = {
            "kind": "webhook",
            "id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope.get("headers", [])],
            "body": base64.b64encode(body).decode("ascii"),
        }
        if not await self._inbox.send(owner, message):
            log.info("call %s: its instance %s is not listening; handling the webhook here", call_id, owner)
            return None
        reply_key = self._link.key("reply", request_id)
        try:
            got = await self._link.blocking_client.blpop([reply_key], timeout=FORWARD_TIMEOUT_S)
        except Exception as exc:
            if not is_connection_error(exc):
                raise
            self._link.lost(exc)
            return None
        if got is None:
            log.warning(
                "call %s: instance %s did not answer a forwarded webhook within %.0f s; handling it here",
                call_id,
                owner,
                FORWARD_TIMEOUT_S,
            )
            return None
        self.forwarded += 1
        reply: dict[str, Any] = json.loads(got[1])
        return reply

    async def serve_forwarded(self, message: dict[str, Any]) -> None:
        """Inbox handler on the owner: run the webhook through this app, push the response back."""
        if self.app is None:
            return
        headers = [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in message["headers"]]
        path = str(message["path"])
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": str(message["method"]),
            "scheme": "https",
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": str(message.get("query", "")).encode("latin-1"),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 0),
            "server": ("127.0.0.1", 0),
            "extensions": {FORWARDED: {}},
        }
        body = base64.b64decode(str(message["body"]))
        status, out_headers, chunks = 500, [], []

        async def send(event: Message) -> None:
            nonlocal status, out_headers
            if event["type"] == "http.response.start":
                status = int(event["status"])
                raw = event.get("headers", [])
                out_headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in raw]
            elif event["type"] == "http.response.body":
                chunks.append(bytes(event.get("body", b"")))

        await self.app(scope, _replay(body, None), send)
        self.served += 1
        reply = json.dumps(
            {"status": status, "headers": out_headers, "body": base64.b64encode(b"".join(chunks)).decode()}
        )
        key = self._link.key("reply", str(message["id"]))

        async def push(r: Any) -> None:
            async with r.pipeline(transaction=True) as pipe:
                await pipe.rpush(key, reply).expire(key, REPLY_TTL_S).execute()

        await self._link.call(push, fallback=None)


class ForwardProgress:
    """ASGI middleware: hand the carrier's call-progress webhooks to the instance that placed the call."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: tuple[str, ...],
        call_id_of: CallIdOf,
        router: Callable[[], WebhookRouter | None],
    ) -> None:
        self.app = app
        self._paths = frozenset(paths)
        self._call_id_of = call_id_of
        self._router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        router = self._router()
        if (
            router is None
            or scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] not in self._paths
            or FORWARDED in (scope.get("extensions") or {})
        ):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        call_id = self._call_id_of(scope["path"], body) if complete else ""
        reply = await router.route(call_id, scope, body) if call_id else None
        if reply is None:
            await self.app(scope, _replay(body, receive, more=not complete), send)
            return
        headers = [(str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in reply["headers"]]
        await send({"type": "http.response.start", "status": int(reply["status"]), "headers": headers})
        await send({"type": "http.response.body", "body": base64.b64decode(str(reply["body"]))})


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body (up to :data:`MAX_ROUTED_BODY`) and whether that is all of it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunk = bytes(message.get("body", b""))
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > MAX_ROUTED_BODY:
            return b"".join(chunks), False


def _replay(body: bytes, rest: Receive | None, *, more: bool = False) -> Receive:
    """A ``receive`` that gives ``body`` again (``more``: the rest of the body follows), then what
    ``rest`` receives (a forwarded request has nothing after its body: a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        if rest is not None:
            return await rest()
        return {"type": "http.disconnect"}

    return receive
