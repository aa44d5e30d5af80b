"""Nothing on a request's path searches ``sys.path``: a failed import is never cached, so an optional
module missing from the environment costs a filesystem search on every call that tries it."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

from getpatter._pool import pooled_client
from tests.fakes.stale_http import RawRequest, RawResponse, StaleHttpServer


class _Lookups(MetaPathFinder):
    def __init__(self) -> None:
        self.names: list[str] = []

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        self.names.append(fullname)
        return None  # only counting: the real finders after us answer


def _ok(_request: RawRequest) -> RawResponse:
    return RawResponse(200, b"ok")


async def test_pooled_http_requests_do_not_search_for_modules() -> None:
    """httpcore imports ``sniffio`` per request (a dependency of ours for that reason)."""
    server = StaleHttpServer(_ok)
    async with server.serving() as base_url, pooled_client(base_url=base_url) as client:
        await client.get("/ok")  # warm: whatever a first request imports for good
        lookups = _Lookups()
        sys.meta_path.insert(0, lookups)
        try:
            for _ in range(3):
                assert (await client.get("/ok")).status_code == 200
        finally:
            sys.meta_path.remove(lookups)
    assert lookups.names == []
