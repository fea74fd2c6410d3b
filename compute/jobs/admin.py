"""The compute queue for administrators: every run, filterable, with actions to cancel,
requeue or move runs and to run the sweep now; each run's page lists what administrators
did to it; the live queue page (queue_page.py) at /admin/jobs/job/queue/; the queues
(paused or not), the workers, the quotas per user and per group, and the log of what
administrators did (read-only). The actions go through compute.jobs.queue, which records
each one."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, URLResolver

from . import queue, queue_page, services
from .models import AdminAction, Job, Queue, Quota, Upload, Worker


class AdminActionInline(admin.TabularInline):
    """What administrators did to the run (who, what, when), read-only."""

    model = AdminAction
    fk_name = "job"
    fields = ("at", "actor", "action", "queue", "worker", "detail")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "administrator's action"
    verbose_name_plural = "administrators' actions"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("jobs.view_job")  # whoever sees the run sees these

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "graph", "owner", "status", "queue", "priority", "step", "total_steps",
                    "attempts", "device", "worker", "created_at", "heartbeat_at")
    list_filter = ("status", "queue", "kind", "dataset", "device")
    search_fields = ("graph__name", "owner__username", "worker", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel_runs", "requeue_runs", "move_to_front", "sweep_now"]
    date_hierarchy = "created_at"
    list_select_related = ("graph", "owner")
    inlines = [AdminActionInline]

    def get_urls(self) -> list[URLResolver | URLPattern]:
        return [*queue_page.urls(self), *super().get_urls()]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from the API, where everything is checked

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        services.delete_job(obj)  # cancelled first, and its folder removed

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            services.delete_job(job)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset.filter(status__in=Job.ACTIVE),
                   lambda job: queue.cancel(job, request.user), "asked {} run(s) to stop")

    @admin.action(description="Requeue the selected failed or cancelled runs")
    def requeue_runs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset, lambda job: queue.requeue(job, request.user),
                   "requeued {} run(s) as new runs")

    @admin.action(description="Move the selected waiting runs to the front of their queues")
    def move_to_front(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._each(request, queryset.order_by("created_at", "id"),
                   lambda job: queue.move_to_front(job, request.user),
                   "moved {} run(s) to the front")

    def _each(self, request: HttpRequest, jobs: QuerySet[Job], act: Any, done: str) -> None:
        """Act on every run; each refusal is said (run id and reason), the rest go on."""
        count = 0
        for job in jobs.select_related("graph", "owner"):
            try:
                act(job)
            except services.JobError as exc:  # QueueError among them
                self.message_user(request, f"run {job.id}: {exc}", messages.WARNING)
            else:
                count += 1
        self.message_user(request, done.format(count), messages.SUCCESS)

    @admin.action(description="Run the sweep now (hand on runs whose worker is gone)")
    def sweep_now(self, request: HttpRequest, queryset: Any) -> None:
        changed = services.sweep()
        self.message_user(request, f"the sweep changed {len(changed)} run(s)",
                          messages.SUCCESS)


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "owner", "kind", "task", "size", "created_at")
    list_filter = ("kind", "task")
    search_fields = ("name", "owner__username")


class ReadOnly(admin.ModelAdmin):
    """Rows the workers or the queue's actions write: shown, not edited here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Queue)
class QueueAdmin(ReadOnly):
    list_display = ("name", "paused", "paused_by", "paused_at")
    actions = ["pause", "resume"]

    @admin.action(description="Pause the selected queues (nothing new starts)")
    def pause(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._each(request, queryset, queue.pause_queue)

    @admin.action(description="Resume the selected queues")
    def resume(self, request: HttpRequest, queryset: QuerySet[Queue]) -> None:
        self._each(request, queryset, queue.resume_queue)

    def _each(self, request: HttpRequest, queryset: QuerySet[Queue], act: Any) -> None:
        for row in queryset:
            try:
                act(row.name, request.user)
            except queue.QueueError as exc:
                self.message_user(request, str(exc), messages.ERROR)


@admin.register(Worker)
class WorkerAdmin(ReadOnly):
    list_display = ("hostname", "host", "queues", "pool", "concurrency", "device",
                    "draining", "heartbeat_at", "stopped_at")
    list_filter = ("draining",)
    search_fields = ("hostname", "host", "device")
    actions = ["drain"]

    @admin.action(description="Drain the selected workers (finish their runs, take no more)")
    def drain(self, request: HttpRequest, queryset: QuerySet[Worker]) -> None:
        for worker in queryset:
            try:
                queue.drain_worker(worker.hostname, request.user)
            except queue.QueueError as exc:
                self.message_user(request, str(exc), messages.ERROR)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):
    """Per user or per group (one of the two); an empty limit takes the default in
    settings. A user's own quota wins over their groups'; of several groups, the most
    generous value of each limit (docs/queue.md)."""

    list_display = ("__str__", "max_queued", "max_running", "max_run_seconds",
                    "max_parameters", "gpu_hours_per_day", "gpu_hours_per_week")
    search_fields = ("user__username", "group__name")
    autocomplete_fields = ("user", "group")


@admin.register(AdminAction)
class AdminActionAdmin(ReadOnly):
    list_display = ("at", "actor", "action", "job", "queue", "worker", "detail")
    list_filter = ("action", "queue")
    search_fields = ("actor__username", "worker", "detail")
    date_hierarchy = "at"
    list_select_related = ("actor", "job")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the record of who did what stays
