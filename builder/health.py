"""`/healthz` and `/readyz`, answered before any other middleware: a load balancer or
Docker probes them over plain HTTP by an address that is not in ALLOWED_HOSTS, and the
answers hold nothing that depends on the request.

/healthz: the process answers (no I/O). /readyz: the database and Redis answer too; 503
otherwise, saying which did not (the reason goes to the log, not to the caller).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse

log = logging.getLogger(__name__)
CHECK_TIMEOUT = 2.0  # seconds Redis may take to answer


def database_ready() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return True
    except Exception:
        log.warning("readyz: the database did not answer", exc_info=True)
        return False


def redis_ready() -> bool:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT,
                                  socket_timeout=CHECK_TIMEOUT)
    try:
        return bool(client.ping())
    except Exception:
        log.warning("readyz: Redis did not answer", exc_info=True)
        return False
    finally:
        client.close()


def healthz() -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz() -> JsonResponse:
    checks = {"database": database_ready(), "redis": redis_ready()}
    failed = [name for name, ok in checks.items() if not ok]
    body: dict[str, object] = {name: "ok" if ok else "unreachable"
                               for name, ok in checks.items()}
    body["status"] = "ok" if not failed else f"not ready: {', '.join(failed)} unreachable"
    return JsonResponse(body, status=503 if failed else 200)


PROBES = {"/healthz": healthz, "/readyz": readyz}


class HealthMiddleware:
    """First in MIDDLEWARE: GET or HEAD on a probe's path is answered here."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            response = probe()
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)
