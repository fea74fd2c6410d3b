"""Limits and error answers at the edge of the web app.

The body limit is checked three times, by whichever layer sees a body first: the web
server's request (builder/webserver.py, before Daphne reads a byte of it), the ASGI guard
(builder/asgi.py, for any other ASGI server) and RequestSizeLimitMiddleware (WSGI, tests).
All three take the limit from body_limit() and answer with too_large().
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)
# Exceptions that are answers, not failures: Django turns them into 400, 403 and 404 (JSON
# under /api/: see builder.graphs.errors).
HTTP_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)
SERVER_ERROR = "the server failed to handle this request; the failure was logged"

UPLOADS_PATH = "/api/uploads"
IMPORT_PATH = "/api/graphs/import"


def body_limit(path: str) -> tuple[int, str]:
    """The most bytes a request body to `path` may have, and the setting that says so."""
    if path == UPLOADS_PATH:
        # Not at the top: the engine's dataset module loads torch, which the web server's
        # launcher should not need to import before it has an app.
        from compute.engine.datasets import MAX_UPLOAD_BYTES

        return MAX_UPLOAD_BYTES + 64 * 1024, "the upload limit"
    if path == IMPORT_PATH:
        from compute.engine.limits import OnnxLimits

        return OnnxLimits.from_env().max_onnx_bytes + 64 * 1024, "SHIPYARD_MAX_ONNX_BYTES"
    return settings.SHIPYARD_MAX_REQUEST_BYTES, "SHIPYARD_MAX_GRAPH_BYTES"


def too_large(length: int | None, limit: int, what: str) -> str:
    """The 413 error's sentence; `length` None: a body sent without a declared length."""
    if length is None:
        return f"the request body grew past the limit of {limit:,} bytes ({what})"
    return f"the request body is {length:,} bytes; the limit is {limit:,} bytes ({what})"


def is_api_path(path: str) -> bool:
    """Paths whose every answer, errors included, is JSON."""
    return path.startswith(("/api/", "/ws/"))


Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[dict[str, Any], Receive, Send], Awaitable[None]]


class BodyLimit:
    """The body limit in front of an ASGI app, for servers that hand the body on as it comes
    (Daphne reads it all first: builder.webserver refuses it there). A declared length over
    the limit is answered 413 before the body is read; a body without one is taken in here,
    counted, and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = body_limit(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            # A malformed length is RequestSizeLimitMiddleware's 400.
            if declared.isdigit() and int(declared) > limit:
                await _answer(send, 413, too_large(int(declared), limit, what))
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _answer(send, 413, too_large(None, limit, what))
                return
            if not message.get("more_body", False):
                break
        whole = iter([{"type": "http.request", "body": b"".join(chunks), "more_body": False}])

        async def replay() -> Message:
            return next(whole, None) or await receive()

        await self.app(scope, replay, send)


async def _answer(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RequestSizeLimitMiddleware:
    """Refuse a body over the limit with 413 before anything reads or parses it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        if not (raw.isascii() and raw.isdigit()):
            return JsonResponse({"error": f"bad Content-Length {raw!r}"}, status=400)
        length = int(raw)
        limit, what = body_limit(request.path)
        if length > limit:
            return JsonResponse({"error": too_large(length, limit, what)}, status=413)
        return self.get_response(request)


class ApiErrorMiddleware:
    """An exception no view handled, under /api/: a JSON 500 (logged), whatever DEBUG says,
    instead of Django's HTML page with its traceback."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api_path(request.path) or isinstance(exception, HTTP_ERRORS):
            return None
        logger.error("%s %s failed", request.method, request.path, exc_info=exception)
        return JsonResponse({"error": SERVER_ERROR}, status=500)
