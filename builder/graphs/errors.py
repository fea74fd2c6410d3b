"""One error format for the whole API: {"error": "...", and details where there are some}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from compute.jobs.services import JobError

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
