"""API plumbing shared by every app (builder.graphs, builder.accounts, compute.jobs): the
one error format, body and query parsing, and helpers for the OpenAPI components. It knows
no app: an app's errors subclass ApiError and say their own status and body.

Every error is `{"error": "...", and details where there are some}`."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.exceptions import Throttled
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

ERROR = OpenApiResponse(description='{"error": "..."} and details where there are some')


class ApiError(Exception):
    """A request that cannot be done: answered with `status` and `{"error": message,
    **details}` (a subclass may shape its body otherwise with `body()`)."""

    def __init__(self, message: str, *, status: int = 400, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": str(self), **self.details}


def parsed(serializer_class: type, data: Any) -> dict[str, Any]:
    """The validated data of a request body or query; a 400 naming the fields otherwise."""
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    validated: dict[str, Any] = serializer.validated_data
    return validated


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """REST_FRAMEWORK's EXCEPTION_HANDLER: every error the API answers, as one format."""
    if isinstance(exc, ApiError):
        return Response(exc.body(), status=exc.status)
    if isinstance(exc, RequestDataTooBig):
        return Response({"error": str(exc) or "the request body is too large"},
                        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, Throttled):
        # The only throttle the API's views use is the one on visitors without an account
        # (builder.accounts.throttles.AnonymousThrottle); DRF's handler sets Retry-After.
        wait = math.ceil(exc.wait or 1)
        response.data = {"error": f"too many requests without an account from this address: "
                                  f"try again in {wait} s, or sign up or log in",
                         "retry_after": wait}
        return response
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"error": str(data["detail"])}
    elif isinstance(data, dict):
        response.data = {"error": "some fields are not valid; see fields", "fields": data}
    elif isinstance(data, list):
        response.data = {"error": " ".join(map(str, data))}
    return response


# OpenAPI components: each app adds its own with a drf-spectacular post-processing hook
# (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]); the views refer to them by $ref.


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def integers(*names: str) -> dict[str, Any]:
    return {name: {"type": "integer"} for name in names}


def object_schema(properties: dict[str, Any], *, optional: tuple[str, ...] = (),
                  description: str = "") -> dict[str, Any]:
    """An object of these members, all required but the `optional` ones."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }
    if description:
        schema["description"] = description
    return schema


def add_components(result: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """Put `components` into the OpenAPI document `result` (for a post-processing hook)."""
    result.setdefault("components", {}).setdefault("schemas", {}).update(components)
    return result
