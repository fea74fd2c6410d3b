"""One error format for the whole API: {"error": "...", and details where there are some}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from compute.jobs.services import JobError

from .middleware import SERVER_ERROR, is_api_path
from .services import Conflict, GraphTooLarge, InvalidGraph


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, InvalidGraph):
        return Response({"error": "the graph is not valid; see problems",
                         "problems": [p.to_dict() for p in exc.problems]},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, JobError):
        return Response({"error": str(exc), **exc.details}, status=exc.status)
    if isinstance(exc, Conflict):
        from .serializers import version_data

        return Response({"error": str(exc), "current_version": version_data(exc.current)},
                        status=status.HTTP_409_CONFLICT)
    if isinstance(exc, GraphTooLarge | RequestDataTooBig):
        return Response({"error": str(exc) or "the request body is too large"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    elif isinstance(data, dict):
        response.data = {"error": "some fields are not valid; see fields", "fields": data}
    elif isinstance(data, list):
        response.data = {"error": " ".join(map(str, data))}
    return response


# Django's error views (handler400 and the like in builder/urls.py), used when DEBUG is off:
# JSON under /api/ and /ws/, the site's own pages (templates/404.html, 500.html) elsewhere.


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse({"error": "bad request"}, status=400)
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse({"error": "you may not do this"}, status=403)
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse({"error": f"no such endpoint: {request.method} {request.path}"},
                            status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api_path(request.path):
        return JsonResponse({"error": SERVER_ERROR}, status=500)
    return defaults.server_error(request)
