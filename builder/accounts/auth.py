"""`Authorization: Bearer <token>` for the REST API and WebSockets, and the WebSockets'
Origin check."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from .models import ApiToken
from .services import hash_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "write the header as 'Authorization: Bearer <token>'")
        token = (ApiToken.objects.select_related("user")
                 .filter(key_hash=hash_token(header[1]), revoked_at__isnull=True).first())
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("this API token is unknown or revoked")
        ApiToken.objects.filter(id=token.id).update(last_used_at=timezone.now())
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # Makes DRF answer 401 (not 403) to requests without credentials.
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "builder.accounts.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}


class BearerTokenMiddleware:
    """For WebSockets: a script sends its API token as `Authorization: Bearer <token>` on
    the handshake; the connection is then that token's user, and `scope["auth_token"]` the
    token's id (None for a session), so that the socket can close when it is revoked.
    Without the header the session's user stays (AuthMiddlewareStack, around this one, set
    it). An unknown token is nobody."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        from channels.db import database_sync_to_async

        header = dict(scope.get("headers", [])).get(b"authorization", b"").decode("latin-1")
        words = header.split()
        if len(words) == 2 and words[0].lower() == "bearer":
            user, token_id = await database_sync_to_async(_token_user)(words[1])
            scope = {**scope, "user": user, "auth_token": token_id}
        return await self.inner(scope, receive, send)


def _token_user(raw: str) -> tuple[Any, int | None]:
    token = (ApiToken.objects.select_related("user")
             .filter(key_hash=hash_token(raw), revoked_at__isnull=True).first())
    return _live(token)


def token_id_user(token_id: int) -> Any:
    """The user of a token that is still live, else nobody (AnonymousUser)."""
    return _live(ApiToken.objects.select_related("user")
                 .filter(id=token_id, revoked_at__isnull=True).first())[0]


def _live(token: ApiToken | None) -> tuple[Any, int | None]:
    from django.contrib.auth.models import AnonymousUser

    if token is None or not token.user.is_active:
        return AnonymousUser(), None
    return token.user, token.id


class BrowserOriginValidator:
    """Refuse a WebSocket whose Origin is not this site: the Origin's scheme, host and port
    must be those of the handshake itself (its Host header, a host in ALLOWED_HOSTS; http
    for ws, https for wss), or one of CSRF_TRUSTED_ORIGINS (for a site behind a proxy that
    ends TLS). Another port of the same host is another site. A handshake without an
    Origin comes from a script, not a page (browsers always send one), so it passes here
    and must still authenticate, with an API token."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not same_origin(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)


def same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers", []))
    if b"origin" not in headers:
        return True
    origin = headers[b"origin"].decode("latin-1").strip().lower()
    if origin in {trusted.lower().rstrip("/") for trusted in settings.CSRF_TRUSTED_ORIGINS}:
        return True
    host = headers.get(b"host", b"").decode("latin-1").strip().lower()
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    scheme = "https" if scope.get("scheme") == "wss" else "http"
    site = _with_port(f"{scheme}://{host}")
    return site is not None and _with_port(origin) == site


def _with_port(origin: str) -> str | None:
    """`scheme://host:port`, the port written even when it is the scheme's default; None
    for anything that is not an origin (a path, a user, no host, `null`)."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    extra = parts.username or parts.path or parts.query or parts.fragment
    if parts.scheme not in ("http", "https") or not parts.hostname or extra:
        return None
    port = port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


def origin_checked(application: Any) -> BrowserOriginValidator:
    return BrowserOriginValidator(application)
