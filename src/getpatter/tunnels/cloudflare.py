"""Run a ``cloudflared`` quick tunnel for the local server and learn its public host.

Contract (API.md A.18, ``shared/protocols/cloudflared.md``):

* the binary is looked up on ``PATH`` first; missing -> ``FileNotFoundError`` with install hints (we never
  download binaries at run time);
* ``cloudflared tunnel --url http://<origin>:<port>`` is started as an asyncio subprocess and both of its
  pipes are scanned line by line for ``https://<name>.trycloudflare.com`` (the disclaimer line and the
  ``api.trycloudflare.com`` service host are never taken for it);
* no URL within ``timeout_s`` -> ``TimeoutError``; the process exiting first -> ``PatterConnectionError``
  carrying its last lines, so the user sees cloudflared's own reason (rate limit, blocked UDP, ...);
* both pipes keep being drained for the life of the process: cloudflared logs for as long as it runs,
  and a full pipe buffer would block it (and with it, every call);
* :meth:`CloudflaredTunnel.stop` sends SIGTERM, waits, sends SIGTERM again (cloudflared's second signal
  skips its 30 s grace period), then kills. Processes still running at interpreter exit are terminated
  by an ``atexit`` hook. Only processes started here are ever signalled, by their PID.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import logging
import os
import re
import shutil
import signal
from collections.abc import Sequence
from typing import Any

from getpatter.errors import PatterConnectionError

log = logging.getLogger("getpatter.tunnel")

DEFAULT_TIMEOUT_S = 30.0
#: Strict: a dotted label list before ``.trycloudflare.com``; ``api`` (the quick-tunnel service) is refused.
TUNNEL_URL = re.compile(r"https://([a-z0-9-]+(?:\.[a-z0-9-]+)*)\.trycloudflare\.com")
_SERVICE_NAMES = frozenset({"api"})

INSTALL_HINTS = (
    "cloudflared is not on PATH; getpatter needs it for tunnel=True / CloudflareTunnel(). Install it:\n"
    "  macOS:    brew install cloudflared\n"
    "  Debian/Ubuntu: sudo apt-get install cloudflared  "
    "(after adding Cloudflare's apt repo: https://pkg.cloudflare.com/)\n"
    "  Windows:  winget install --id Cloudflare.cloudflared\n"
    "  other:    https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/\n"
    "Or skip the tunnel: Patter(webhook_url='your-public-host.example.com')."
)

# PIDs of cloudflared processes we started and have not yet reaped; the atexit hook ends them.
_LIVE_PIDS: set[int] = set()


def find_tunnel_host(line: str) -> str | None:
    """The ``<name>.trycloudflare.com`` host announced in one log line, or ``None``."""
    for match in TUNNEL_URL.finditer(line):
        if match.group(1).lower() not in _SERVICE_NAMES:
            return f"{match.group(1).lower()}.trycloudflare.com"
    return None


def origin_host(bind_host: str) -> str:
    """Where cloudflared should reach our server: the loopback address for wildcard/loopback binds
    (``localhost`` may resolve to ``::1`` while we listen on 127.0.0.1), else the bind address itself."""
    host = bind_host.strip()
    if host in ("", "0.0.0.0", "127.0.0.1", "localhost"):
        return "127.0.0.1"
    if host in ("::", "::1"):
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class CloudflaredTunnel:
    """One quick tunnel: ``host = await tunnel.start()`` ... ``await tunnel.stop()`` (idempotent).

    ``timeout_s`` bounds the wait for the URL; ``extra_args`` are appended to the command line (for
    example ``("--protocol", "http2")`` on networks that block UDP 7844).
    """

    def __init__(
        self,
        port: int,
        *,
        origin: str = "127.0.0.1",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        binary: str = "cloudflared",
        extra_args: Sequence[str] = (),
        stop_grace_s: float = 3.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.port = port
        self.origin = origin
        self.timeout_s = timeout_s
        self.binary = binary
        self.extra_args = tuple(extra_args)
        self.stop_grace_s = stop_grace_s
        self.host = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._found: asyncio.Future[str] | None = None
        self._tail: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def command(self, path: str) -> list[str]:
        return [
            path,
            "tunnel",
            "--url",
            f"http://{self.origin}:{self.port}",
            "--no-autoupdate",
            *self.extra_args,
        ]

    async def start(self) -> str:
        """Start cloudflared and return the public host (``<name>.trycloudflare.com``, no scheme)."""
        if self._proc is not None:
            raise RuntimeError("this tunnel was already started; create a new CloudflaredTunnel")
        path = shutil.which(self.binary)
        if path is None:
            raise FileNotFoundError(INSTALL_HINTS)
        loop = asyncio.get_running_loop()
        self._found = loop.create_future()
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(path),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _LIVE_PIDS.add(self._proc.pid)
        log.info("started cloudflared (pid %d) for http://%s:%d", self._proc.pid, self.origin, self.port)
        for name, stream in (("stdout", self._proc.stdout), ("stderr", self._proc.stderr)):
            if stream is not None:
                self._readers.append(asyncio.create_task(self._drain(stream), name=f"cloudflared-{name}"))
        exited: asyncio.Future[Any] = asyncio.ensure_future(self._proc.wait())
        found: asyncio.Future[Any] = self._found
        try:
            done, _ = await asyncio.wait(
                {found, exited}, timeout=self.timeout_s, return_when="FIRST_COMPLETED"
            )
        except BaseException:
            exited.cancel()
            await self.stop()
            raise
        if self._found in done:
            exited.cancel()
            self.host = self._found.result()
            log.info("Tunnel ready: https://%s", self.host)
            return self.host
        exited.cancel()
        if not done:
            await self.stop()
            raise TimeoutError(
                f"cloudflared printed no https://<name>.trycloudflare.com URL within {self.timeout_s:g} s. "
                "Check your internet connection (quick tunnels need outbound UDP 7844, or pass "
                "--protocol http2), or use webhook_url= with a host you control. Last output:\n"
                + self._last_lines()
            )
        code = self._proc.returncode
        await self.stop()
        raise PatterConnectionError(
            f"cloudflared exited with code {code} before opening a tunnel. Last output:\n"
            + self._last_lines()
        )

    async def stop(self) -> None:
        """SIGTERM, wait, SIGTERM again (skips cloudflared's grace period), then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            for attempt in range(2):
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), self.stop_grace_s if attempt == 0 else 2.0)
                    break
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            log.info("stopped cloudflared (pid %d)", proc.pid)
        if proc is not None:
            _LIVE_PIDS.discard(proc.pid)
        readers, self._readers = self._readers, []
        for task in readers:
            # After exit the pipes hit EOF on their own; a grandchild holding them open must not hang us.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 1.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._found is not None and not self._found.done():
            self._found.cancel()

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line longer than the reader's limit: skip what is buffered
                raw = await stream.read(65536)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()
            self._tail.append(line)
            log.debug("cloudflared: %s", line)
            if self._found is not None and not self._found.done():
                host = find_tunnel_host(line)
                if host is not None:
                    self._found.set_result(host)

    def _last_lines(self) -> str:
        return "\n".join(f"  {line}" for line in self._tail) or "  (nothing)"


def _terminate_leftovers() -> None:
    """atexit: the event loop may be gone, so signal by PID (twice: the second skips the grace period)."""
    for pid in list(_LIVE_PIDS):
        for _ in range(2):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
    _LIVE_PIDS.clear()


atexit.register(_terminate_leftovers)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "INSTALL_HINTS",
    "TUNNEL_URL",
    "CloudflaredTunnel",
    "find_tunnel_host",
    "origin_host",
]
