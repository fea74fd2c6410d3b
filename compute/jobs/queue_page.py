"""The administrators' queue page: `/admin/jobs/job/queue/` and its actions, in the admin.

    GET  queue/            the page (templates/admin/jobs/queue.html, static jobs/queue.js):
                           every queue's waiting runs in start order and its running runs,
                           and the workers; live over `ws/admin/queue/` (QueueConsumer)
    GET  queue/snapshot    queue.snapshot() as JSON (the page's fallback while its socket
                           is down)
    POST queue/<action>    one operation, form-encoded with the CSRF token, answered as JSON:
                           {"message": "...", "snapshot": {...}} or {"error": "...",
                           "field": "..."} with a 4xx status

Every view needs a staff session (the admin's own login; anyone else is sent to it) and the
permission to view runs (the page) or change them (the actions). The actions are thin: each
checks its form's fields here, at the edge, then calls one function of compute.jobs.queue,
whose QueueError (or any JobError) becomes the answer's error and status.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin
from django.db.backends.base.operations import BaseDatabaseOperations
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.views.decorators.http import require_GET, require_POST

from . import queue
from .models import Job
from .services import JobError

PAGE_URL_NAME = "jobs_job_queue"
# A run id (digits that fit the id column); a worker's Celery node name.
RUN_ID = re.compile(r"[0-9]{1,9}")
PRIORITY = re.compile(r"-?[0-9]{1,9}")
MAX_HOSTNAME = Job._meta.get_field("worker").max_length or 200
# The column's range on every database (SQLite's own would take any 64-bit number).
PRIORITY_RANGE = BaseDatabaseOperations.integer_field_ranges["SmallIntegerField"]


class BadField(queue.QueueError):
    """A form field that is missing or malformed (400, naming the field)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message, status=status, field=field)


def _field(request: HttpRequest, name: str) -> str:
    value = request.POST.get(name)
    if value is None or not value.strip():
        raise BadField(name, f"{name} is missing")
    return value.strip()


def _show(value: str) -> str:
    """A user's value inside a message: quoted, cut short."""
    return repr(value[:40] + ("…" if len(value) > 40 else ""))


def run_of(request: HttpRequest) -> Job:
    raw = _field(request, "job")
    if not RUN_ID.fullmatch(raw):
        raise BadField("job", f"job must be a run id (a number), got {_show(raw)}")
    job = Job.objects.select_related("graph", "owner").filter(id=int(raw)).first()
    if job is None:
        raise BadField("job", f"there is no run {raw}", status=404)
    return job


def queue_of(request: HttpRequest) -> str:
    name = _field(request, "queue")
    if name not in queue.QUEUES:
        raise BadField("queue", f"there is no queue {_show(name)}; the queues are "
                       f"{', '.join(queue.QUEUES)}")
    return name


def priority_of(request: HttpRequest) -> int:
    raw = _field(request, "priority")
    low, high = PRIORITY_RANGE
    if not PRIORITY.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadField("priority", f"priority must be a whole number from {low} to {high}, "
                       f"got {_show(raw)}")
    return int(raw)


def worker_of(request: HttpRequest) -> str:
    name = _field(request, "worker")
    if len(name) > MAX_HOSTNAME:
        raise BadField("worker", f"a worker's name has at most {MAX_HOSTNAME} characters")
    return name


# The operations: what each takes from the form, does, and says it did.


def _cancel(request: HttpRequest) -> str:
    job = queue.cancel(run_of(request), request.user)
    return (f"run {job.id} cancelled" if job.finished
            else f"run {job.id} was asked to stop")


def _requeue(request: HttpRequest) -> str:
    job = run_of(request)
    new = queue.requeue(job, request.user)
    return f"run {job.id} requeued as run {new.id}"


def _priority(request: HttpRequest) -> str:
    job = run_of(request)
    priority = priority_of(request)
    queue.set_priority(job, priority, request.user)
    return f"run {job.id} now has priority {priority}"


def _front(request: HttpRequest) -> str:
    job = run_of(request)
    queue.move_to_front(job, request.user)
    return f"run {job.id} moved to the front of the {job.queue} queue"


def _pause(request: HttpRequest) -> str:
    name = queue_of(request)
    queue.pause_queue(name, request.user)
    return f"the {name} queue is paused: nothing new starts there"


def _resume(request: HttpRequest) -> str:
    name = queue_of(request)
    queue.resume_queue(name, request.user)
    return f"the {name} queue runs again"


def _drain(request: HttpRequest) -> str:
    name = worker_of(request)
    queue.drain_worker(name, request.user)
    return f"{name} finishes its runs and takes no more"


@dataclass(frozen=True)
class Operation:
    do: Callable[[HttpRequest], str]
    takes: tuple[str, ...]  # its form fields


OPERATIONS: dict[str, Operation] = {
    "cancel": Operation(_cancel, ("job",)),
    "requeue": Operation(_requeue, ("job",)),
    "priority": Operation(_priority, ("job", "priority")),
    "front": Operation(_front, ("job",)),
    "pause": Operation(_pause, ("queue",)),
    "resume": Operation(_resume, ("queue",)),
    "drain": Operation(_drain, ("worker",)),
}


def _refused(request: HttpRequest, model_admin: admin.ModelAdmin, change: bool) -> bool:
    allowed = (model_admin.has_change_permission(request) if change
               else model_admin.has_view_permission(request))
    return not allowed


def _error(message: str, status: int, **details: Any) -> JsonResponse:
    return JsonResponse({"error": message, **details}, status=status)


def page_view(model_admin: admin.ModelAdmin) -> Callable[..., HttpResponse]:
    @require_GET
    def page(request: HttpRequest) -> HttpResponse:
        if _refused(request, model_admin, change=False):
            return HttpResponse("you may not view the runs", status=403,
                                content_type="text/plain")
        context = {
            **model_admin.admin_site.each_context(request),
            "title": "Compute queue",
            "opts": model_admin.model._meta,
            "snapshot": queue.snapshot(),
            "may_change": model_admin.has_change_permission(request),
        }
        return TemplateResponse(request, "admin/jobs/queue.html", context)

    return page


def snapshot_view(model_admin: admin.ModelAdmin) -> Callable[..., HttpResponse]:
    @require_GET
    def snapshot(request: HttpRequest) -> HttpResponse:
        if _refused(request, model_admin, change=False):
            return _error("you may not view the runs", 403)
        return JsonResponse(queue.snapshot())

    return snapshot


def action_view(model_admin: admin.ModelAdmin) -> Callable[..., HttpResponse]:
    @require_POST
    def act(request: HttpRequest, action: str) -> HttpResponse:
        if _refused(request, model_admin, change=True):
            return _error("you may not change runs", 403)
        operation = OPERATIONS.get(action)
        if operation is None:
            return _error(f"there is no action {_show(action)}; the actions are "
                          f"{', '.join(OPERATIONS)}", 404)
        try:
            message = operation.do(request)
        except JobError as exc:  # QueueError, or a check of the runs' own (a quota)
            field = {"field": exc.field} if exc.field else {}
            return _error(str(exc), exc.status, **exc.details, **field)
        return JsonResponse({"message": message, "snapshot": queue.snapshot()})

    return act


def urls(model_admin: admin.ModelAdmin) -> list[URLPattern]:
    """The page's URLs, under the run admin's own (JobAdmin.get_urls)."""
    wrap = model_admin.admin_site.admin_view  # staff only, CSRF-checked, never cached
    return [
        path("queue/", wrap(page_view(model_admin)), name=PAGE_URL_NAME),
        path("queue/snapshot", wrap(snapshot_view(model_admin)),
             name="jobs_job_queue_snapshot"),
        path("queue/<str:action>", wrap(action_view(model_admin)),
             name="jobs_job_queue_action"),
    ]
