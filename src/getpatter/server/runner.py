"""Run the app on uvicorn, bound to ``PATTER_BIND_HOST``; stop cleanly on ``disconnect()`` or a signal.

Live calls are drained first (their sockets closed with 1001 "going away", ``on_call_end`` fired), then
the listening socket closes, so a Ctrl-C never loses a call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

from getpatter.server.connections import ServerLimits
from getpatter.server.state import ServerState

log = logging.getLogger("getpatter.server")


class _Server(uvicorn.Server):
    """uvicorn without its own signal capture: ours drains live calls first (see ServerRunner.stop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ServerRunner:
    def __init__(
        self,
        app: Any,
        state: ServerState | None,
        *,
        host: str,
        port: int,
        grace_s: float = 10.0,
        limits: ServerLimits | None = None,
    ) -> None:
        self.app = app
        #: Connection cap, header/keep-alive timeouts, concurrency (default: from the environment).
        self.limits = limits if limits is not None else ServerLimits.from_env()
        self.state = state
        self.host = host
        self.port = port
        self.grace_s = grace_s
        self.ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._server: uvicorn.Server | None = None
        self._stopping = False

    async def run(self) -> None:
        """Serve until :meth:`stop`; resolves ``ready`` with the bound port once listening."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            if not self.ready.done():
                self.ready.set_exception(exc)
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            # Never let uvicorn rewrite the client address from X-Forwarded-For: the per-IP socket cap
            # believes that header only from PATTER_TRUSTED_PROXIES (server/client_address.py).
            proxy_headers=False,
            ws_ping_interval=20.0,
            ws_max_size=1024 * 1024 + 4096,
            timeout_graceful_shutdown=int(self.grace_s),
            **self.limits.uvicorn_options(),
        )
        server = _Server(config)
        self._server = server
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if task.done():
                    task.result()
                    break
                await asyncio.sleep(0.01)
            if not self.ready.done():
                self.ready.set_result(self.port)
            await task
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            sock.close()

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[signal.Signals]:
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self.stop()))
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
                pass
        return installed

    async def stop(self) -> None:
        """Drain live calls, then stop listening. Idempotent."""
        if self._stopping:
            return
        self._stopping = True
        sessions = list(self.state.sessions.values()) if self.state is not None else []
        for session in sessions:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.end("server_shutdown"), self.grace_s)
        with contextlib.suppress(Exception):
            from getpatter.dashboard.routes import close_event_streams

            close_event_streams(self.app)  # an open dashboard must not hold up the shutdown
        if self._server is not None:
            self._server.should_exit = True
