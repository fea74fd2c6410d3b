"""The compute queue for administrators: every run, filterable, with actions to cancel
runs and to run the sweep now."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from . import services
from .models import Job, Upload


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "graph", "owner", "status", "queue", "step", "total_steps",
                    "attempts", "device", "worker", "created_at", "heartbeat_at")
    list_filter = ("status", "queue", "kind", "dataset", "device")
    search_fields = ("graph__name", "owner__username", "worker", "error")
    readonly_fields = [f.name for f in Job._meta.fields]
    actions = ["cancel_runs", "sweep_now"]
    date_hierarchy = "created_at"
    list_select_related = ("graph", "owner")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start from the API, where everything is checked

    def delete_model(self, request: HttpRequest, obj: Job) -> None:
        services.delete_job(obj)  # cancelled first, and its folder removed

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            services.delete_job(job)

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        done = 0
        for job in queryset.filter(status__in=Job.ACTIVE):
            services.cancel_job(job)
            done += 1
        self.message_user(request, f"asked {done} run(s) to stop", messages.SUCCESS)

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
