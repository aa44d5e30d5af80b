"""One server's membership of a fleet: built with the app, joined while it serves.

:func:`attach` runs when ``Patter(redis_url=...)`` builds an app: it adds the webhook-forwarding middleware
and the hooks the shared parts need (the registry's placed calls, the media-session observer). They do
nothing until :meth:`FleetMember.joined` connects to Redis (``serve()``, or the app's lifespan under your
own uvicorn), and nothing again once it leaves: a member that is not joined is a single instance.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from getpatter.call.bus import EventBus
from getpatter.call.context import CallContext

if TYPE_CHECKING:
    from fastapi import FastAPI

    from getpatter.dashboard.store import MetricsStore
    from getpatter.fleet.admission import RedisSeats
    from getpatter.fleet.dashboard_mirror import DashboardMirror
    from getpatter.fleet.forward import WebhookRouter
    from getpatter.fleet.inbox import Inbox
    from getpatter.fleet.media_relay import MediaRelay
    from getpatter.fleet.redis_link import RedisLink
    from getpatter.server.calls import OutboundCall
    from getpatter.server.state import ServerState


class FleetMember:
    def __init__(
        self, fleet: tuple[str, str], state: ServerState, store: MetricsStore | None, app: Any
    ) -> None:
        self.fleet = fleet
        self._state = state
        self._store = store
        self._app = app
        #: While joined: the link and the shared parts.
        self.link: RedisLink | None = None
        self.router: WebhookRouter | None = None
        self.inbox: Inbox | None = None
        self.relay: MediaRelay | None = None
        self.mirror: DashboardMirror | None = None

    def placed(self, record: OutboundCall) -> None:
        if self.router is not None:
            self.router.remember(record.call_id)

    def observe(self, bus: EventBus, ctx: CallContext) -> None:
        if self.relay is not None:
            self.relay.observe(bus, ctx)

    @contextlib.asynccontextmanager
    async def joined(self) -> AsyncIterator[None]:
        """Connect (a clear error naming the URL if Redis is down), share, and leave on exit."""
        from getpatter.fleet.admission import RedisSeats
        from getpatter.fleet.dashboard_mirror import DashboardMirror
        from getpatter.fleet.forward import WebhookRouter
        from getpatter.fleet.inbox import Inbox
        from getpatter.fleet.join import install
        from getpatter.fleet.media_relay import MediaRelay
        from getpatter.fleet.redis_link import RedisLink
        from getpatter.fleet.schedules import RedisFireLeases

        url, prefix = self.fleet
        link = RedisLink(url, prefix=prefix)
        await link.start()
        inbox = Inbox(link)
        router = WebhookRouter(link, inbox)
        router.app = self._app
        relay = MediaRelay(self._state.outbound, router, inbox, link.instance_id)
        inbox.on("webhook", router.serve_forwarded)
        inbox.on("media", relay.receive)
        mirror = DashboardMirror(link, self._store) if self._store is not None else None
        coordinator = install(self.fleet)
        seats: RedisSeats | None = None
        try:
            await inbox.start()
            if mirror is not None:
                await mirror.start()
            self.link, self.inbox, self.router, self.relay, self.mirror = link, inbox, router, relay, mirror
            link.on_back.append(self._reassert_owners)
            if coordinator is not None:
                coordinator.join(RedisFireLeases(link))
            fleet_max_calls = self._state.admission.limits.fleet_max_calls
            if fleet_max_calls:
                seats = RedisSeats(link, fleet_max_calls)
                await seats.start()
                self._state.admission.join_fleet(seats)
            yield
        finally:
            if seats is not None:
                self._state.admission.join_fleet(None)
                await seats.close()
            if coordinator is not None:
                coordinator.leave()
            self.router = self.relay = None
            if mirror is not None:
                await mirror.close()
            await inbox.close()
            self.link = self.inbox = self.mirror = None
            await link.close()

    async def _reassert_owners(self) -> None:
        """Redis is back (perhaps restarted, empty): claim the calls placed here that are not over."""
        router = self.router
        if router is None:
            return
        for call_id in self._state.outbound.pending_ids():
            router.remember(call_id)


def attach(
    fleet: tuple[str, str] | None, app: FastAPI, state: ServerState, store: MetricsStore | None
) -> FleetMember | None:
    """Wire a fleet member into a freshly built app (``None`` without ``redis_url``)."""
    if fleet is None:
        return None
    from getpatter.fleet.forward import ForwardProgress

    member = FleetMember(fleet, state, store, app)
    carrier = state.carrier
    app.add_middleware(
        ForwardProgress,
        paths=carrier.progress_paths(),
        call_id_of=carrier.progress_call_id,
        router=lambda: member.router,
    )
    state.outbound.placed_hooks.append(member.placed)
    state.runtime.observers.append(member.observe)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with member.joined():
            yield

    app.router.lifespan_context = lifespan  # asgi_app() under your own uvicorn joins here
    return member
