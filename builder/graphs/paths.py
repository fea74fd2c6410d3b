"""Guided paths over HTTP: the paths as data, a step's check on the caller's document, and
each user's progress (docs/paths.md). The paths and their checks live in the engine
(compute.engine.paths); this module parses, calls, and stores progress."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from builder.rest import ERROR, ApiError, ref
from compute.engine import paths

from .api import THROTTLED, InspectView
from .models import PathProgress
from .schema import GRAPH_DOCUMENT_REF

MAX_NAME_SHOWN = 64  # a name or step id echoed in an error message is cut to this


def _shown(text: str) -> str:
    return repr(text[:MAX_NAME_SHOWN] + ("…" if len(text) > MAX_NAME_SHOWN else ""))


def _known_path(name: str) -> str:
    if name not in paths.PATHS:
        raise ApiError(f"no path named {_shown(name)}; paths: {', '.join(paths.PATHS)}",
                       status=404)
    return name


# Progress: a selector and a service.


def progress_data(user: AbstractBaseUser, name: str) -> dict[str, Any]:
    """The user's progress on the path; no steps done and no current step if none is kept."""
    row = PathProgress.objects.filter(user=user, path=name).first()
    if row is None:
        return {"path": name, "done": [], "current": None, "updated_at": None}
    return {"path": name, "done": list(row.done), "current": row.current or None,
            "updated_at": row.updated_at.isoformat().replace("+00:00", "Z")}


def save_progress(*, user: AbstractBaseUser, name: str, body: Any) -> dict[str, Any]:
    """Check `{"done": [step ids], "current": step id or null}` against the path's steps
    and keep it (one row per user and path). ApiError(400) names what is wrong."""
    steps = paths.step_ids(name)
    if not isinstance(body, dict):
        raise ApiError('send {"done": [step ids], "current": a step id or null}')
    unknown = sorted(set(body) - {"done", "current"})
    if unknown:
        raise ApiError(f"unknown member {_shown(str(unknown[0]))}: send only done and current")
    done = body.get("done", [])
    if not isinstance(done, list):
        raise ApiError("done must be a list of step ids", field="done")
    if len(done) > len(steps):
        raise ApiError(f"done lists {len(done)} steps; the path has {len(steps)}", field="done")
    seen: set[str] = set()
    for step in done:
        if not isinstance(step, str):
            raise ApiError("done must be a list of step ids (strings)", field="done")
        if step not in steps:
            raise ApiError(f"done: the path {name!r} has no step {_shown(step)}", field="done")
        if step in seen:
            raise ApiError(f"done: the step {step!r} is listed twice", field="done")
        seen.add(step)
    current = body.get("current")
    if current is not None and (not isinstance(current, str) or current not in steps):
        shown = _shown(current) if isinstance(current, str) else "that is not a string"
        raise ApiError(f"current: the path {name!r} has no step {shown}", field="current")
    PathProgress.objects.update_or_create(
        user=user, path=name, defaults={"done": done, "current": current or ""})
    return progress_data(user, name)


# The views.


class PathListView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="paths", responses={200: {"type": "array",
                                                          "items": ref("PathSummary")}})
    def get(self, request: Request) -> Response:
        """The guided paths, in the order the editor offers them."""
        return Response([paths.path_summary(name) for name in paths.PATHS])


class PathDetailView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(operation_id="path", responses={200: ref("GuidedPath"), 404: ERROR})
    def get(self, request: Request, name: str) -> Response:
        """A path with all its steps: explanation, task, kind of check, and the solution
        document "show me" puts on the canvas."""
        return Response(paths.load_path(_known_path(name)))


class PathStepCheckView(APIView):
    # Whoever may inspect a document may check it: the same permission and throttle.
    permission_classes = InspectView.permission_classes
    throttle_classes = InspectView.throttle_classes

    @extend_schema(operation_id="path_step_check",
                   request={"application/json": GRAPH_DOCUMENT_REF},
                   responses={200: ref("StepCheck"), 400: ERROR, 404: ERROR, 413: ERROR,
                              429: THROTTLED})
    def post(self, request: Request, name: str, step_id: str) -> Response:
        """Whether the document does what the step asks (and the steps before it): one
        sentence, and the node it is about."""
        _known_path(name)
        if step_id not in paths.step_ids(name):
            raise ApiError(f"the path {name!r} has no step {_shown(step_id)}", status=404)
        if not isinstance(request.data, dict):
            raise ApiError("send a graph document (a JSON object)")
        return Response(paths.check_step(name, step_id, request.data))


class PathProgressView(APIView):
    @extend_schema(operation_id="path_progress", responses={200: ref("PathProgress"),
                                                            404: ERROR})
    def get(self, request: Request, name: str) -> Response:
        """Your progress on the path."""
        return Response(progress_data(request.user, _known_path(name)))

    @extend_schema(operation_id="path_progress_save",
                   request={"application/json": ref("PathProgressIn")},
                   responses={200: ref("PathProgress"), 400: ERROR, 404: ERROR})
    def put(self, request: Request, name: str) -> Response:
        """Keep your progress on the path: the steps done and the one you are on."""
        return Response(save_progress(user=request.user, name=_known_path(name),
                                      body=request.data))
