from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """Refuse a body over the limit with 413 before anything reads or parses it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            return JsonResponse({"error": f"bad Content-Length {raw!r}"}, status=400)
        limit, what = settings.SHIPYARD_MAX_REQUEST_BYTES, "SHIPYARD_MAX_GRAPH_BYTES"
        if request.path == "/api/uploads":
            from compute.engine.datasets import MAX_UPLOAD_BYTES

            limit, what = MAX_UPLOAD_BYTES + 64 * 1024, "the upload limit"
        if length > limit:
            return JsonResponse(
                {"error": f"the request body is {length:,} bytes; the limit is {limit:,} bytes "
                          f"({what})"}, status=413)
        return self.get_response(request)
