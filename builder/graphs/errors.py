"""Django's own error views in the API's error format: {"error": "..."}. The errors of the
REST views go through builder.rest.exception_handler."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

from .middleware import SERVER_ERROR, is_api_path

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
