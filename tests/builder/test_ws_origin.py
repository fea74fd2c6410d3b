"""A WebSocket handshake from a page must come from this very site: the Origin's scheme,
host and port are the handshake's own (another port of the same host is another site),
unless CSRF_TRUSTED_ORIGINS names it. Without an Origin (a script) it passes on to
authentication."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from builder.asgi import application


def handshake(origin: str | None, host: str | None, scheme: str = "ws") -> str:
    """"opened" (the app answered: here, 4401, nobody is logged in) or "refused"."""

    async def go() -> str:
        headers = [(b"origin", origin.encode())] if origin is not None else []
        headers += [(b"host", host.encode())] if host is not None else []
        socket = WebsocketCommunicator(application, "/ws/jobs/1/", headers=headers)
        socket.scope["scheme"] = scheme
        connected, _ = await socket.connect(timeout=10)
        if not connected:
            return "refused"
        await socket.disconnect()
        return "opened"

    return asyncio.run(go())


@pytest.mark.parametrize(("origin", "host", "scheme"), [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", "ws"),
    ("http://localhost:8000", "localhost:8000", "ws"),
    ("HTTP://LOCALHOST:8000", "localhost:8000", "ws"),
    ("http://127.0.0.1", "127.0.0.1", "ws"),
    ("http://127.0.0.1:80", "127.0.0.1", "ws"),  # the default port, written or not
    ("https://127.0.0.1", "127.0.0.1:443", "wss"),
    ("http://[::1]:8000", "[::1]:8000", "ws"),
    (None, "127.0.0.1:8000", "ws"),  # a script
])
def test_a_handshake_from_this_site_opens(origin: str | None, host: str, scheme: str,
                                          db: None) -> None:
    assert handshake(origin, host, scheme) == "opened"


@pytest.mark.parametrize(("origin", "host", "scheme"), [
    ("http://127.0.0.1:9999", "127.0.0.1:8000", "ws"),  # another port, another site
    ("http://127.0.0.1:8000", "127.0.0.1:9999", "ws"),
    ("http://localhost:8000", "127.0.0.1:8000", "ws"),
    ("https://127.0.0.1:8000", "127.0.0.1:8000", "ws"),  # another scheme
    ("http://127.0.0.1", "127.0.0.1", "wss"),
    ("https://evil.example", "127.0.0.1:8000", "ws"),
    ("http://evil.example:8000", "evil.example:8000", "ws"),  # a host not in ALLOWED_HOSTS
    ("http://127.0.0.1:8000", None, "ws"),  # nothing to compare with
    ("null", "127.0.0.1:8000", "ws"),
    ("http://127.0.0.1:8000/path", "127.0.0.1:8000", "ws"),
    ("http://user@127.0.0.1:8000", "127.0.0.1:8000", "ws"),
    ("http://127.0.0.1:99999", "127.0.0.1:99999", "ws"),
    ("ftp://127.0.0.1:8000", "127.0.0.1:8000", "ws"),
])
def test_a_handshake_from_another_site_is_refused(origin: str, host: str | None,
                                                  scheme: str, db: None) -> None:
    assert handshake(origin, host, scheme) == "refused"


def test_a_trusted_origin_opens_behind_a_proxy_that_ends_tls(db: None, settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://shipyard.example"]
    settings.ALLOWED_HOSTS = ["shipyard.example"]
    assert handshake("https://shipyard.example", "shipyard.example", "ws") == "opened"
    assert handshake("https://shipyard.example:8443", "shipyard.example", "ws") == "refused"
