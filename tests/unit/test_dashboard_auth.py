"""Dashboard token: where it is read from, constant-time match, and the exposure rule (API.md B.2)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI

from getpatter.dashboard.auth import (
    is_exposed,
    require_token,
    resolve_dashboard_token,
    token_matches,
)


def app_with(token: str) -> FastAPI:
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(require_token(token))])
    async def x() -> dict[str, bool]:
        return {"ok": True}

    return app


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({}, "", 401),
        ({"Authorization": "Bearer tok"}, "", 200),
        ({"Authorization": "bearer tok"}, "", 200),
        ({"Authorization": "Bearer  tok "}, "", 200),
        ({"Authorization": "Bearer nope"}, "", 401),
        ({"Authorization": "Basic tok"}, "", 401),
        ({"Authorization": "tok"}, "", 401),
        ({}, "?token=tok", 200),
        ({}, "?token=tok2", 401),
        ({}, "?token=", 401),
        ({"Authorization": "Bearer nope"}, "?token=tok", 401),  # a presented header wins
    ],
)
async def test_token_from_header_or_query(headers: dict[str, str], query: str, status: int) -> None:
    transport = httpx.ASGITransport(app=app_with("tok"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        response = await client.get("/x" + query, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.json() == {"detail": "Unauthorized"}


async def test_empty_token_is_open() -> None:
    transport = httpx.ASGITransport(app=app_with(""))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/x")).status_code == 200


def test_token_matches_any_text() -> None:
    assert token_matches("héllo", "héllo")
    assert not token_matches("héllo", "hello")
    assert not token_matches("", "x")


@pytest.mark.parametrize(
    ("bind", "webhook", "exposed"),
    [
        ("127.0.0.1", "", False),
        ("127.0.0.1", "localhost:8000", False),
        ("localhost", "127.0.0.1", False),
        ("::1", "[::1]:8000", False),
        ("0.0.0.0", "", True),
        ("::", "", True),
        ("10.0.0.5", "", True),
        ("127.0.0.1", "abc.trycloudflare.com", True),
        ("127.0.0.1", "203.0.113.9", True),
    ],
)
def test_exposure(bind: str, webhook: str, exposed: bool) -> None:
    assert is_exposed(bind_host=bind, webhook_host=webhook) is exposed
    token = resolve_dashboard_token("", bind_host=bind, webhook_host=webhook)
    assert bool(token) is exposed
    # allow_insecure keeps an exposed dashboard open; a given token always wins.
    assert resolve_dashboard_token("", bind_host=bind, webhook_host=webhook, allow_insecure=True) == ""
    assert resolve_dashboard_token("mine", bind_host=bind, webhook_host=webhook) == "mine"


def test_generated_tokens_are_long_random_and_url_safe() -> None:
    tokens = {resolve_dashboard_token("", bind_host="0.0.0.0", webhook_host="") for _ in range(20)}
    assert len(tokens) == 20
    for token in tokens:
        assert len(token) >= 32
        assert all(ch.isalnum() or ch in "-_" for ch in token)


def test_token_must_be_a_string() -> None:
    with pytest.raises(TypeError):
        resolve_dashboard_token(123, bind_host="127.0.0.1", webhook_host="")  # type: ignore[arg-type]
