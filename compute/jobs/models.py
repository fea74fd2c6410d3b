"""Runs and what they report. The Job row is the truth about a run: Celery only carries
its id. Every event a run reports (status changes, metric points, attention maps, text
samples) is a `JobEvent` with the job's next sequence number, so a client that missed some
asks for everything after the last number it saw."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


class Upload(models.Model):
    """A user's own data: a CSV (classification or regression) or a text (characters)."""

    class Kind(models.TextChoices):
        CSV = "csv"
        TEXT = "text"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="uploads")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    task = models.CharField(max_length=20, help_text="classification, regression or "
                            "next_token")
    target = models.CharField(max_length=200, blank=True, help_text="CSV: the target column")
    size = models.PositiveIntegerField(help_text="bytes")
    summary = models.CharField(max_length=300, help_text="What it holds, in words.")
    file = models.CharField(max_length=300, help_text="Path under SHIPYARD_HOME/uploads.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def path(self) -> Path:
        return Path(settings.UPLOADS_DIR) / self.file


class Job(models.Model):
    """One run of one graph version on one dataset."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="jobs")
    graph = models.ForeignKey("graphs.Graph", on_delete=models.CASCADE, related_name="jobs")
    version = models.ForeignKey("graphs.GraphVersion", on_delete=models.CASCADE,
                                related_name="jobs", help_text="The version the run trains.")
    kind = models.CharField(max_length=16, default="train")
    dataset = models.CharField(max_length=64, help_text="A built-in dataset, or 'upload'.")
    dataset_options = models.JSONField(default=dict, blank=True)
    upload = models.ForeignKey(Upload, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="jobs")
    config = models.JSONField(default=dict, help_text="The training configuration, complete.")
    queue = models.CharField(max_length=16, default="cpu")
    time_limit = models.PositiveIntegerField(help_text="Seconds a run may take.")

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField()
    attempts = models.PositiveSmallIntegerField(default=0)
    device = models.CharField(max_length=32, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    release_requested = models.BooleanField(default=False, help_text="Its worker is shutting "
                                            "down: checkpoint and go back to the queue.")
    published = models.BooleanField(default=False, help_text="Anyone with a live share link "
                                    "of the graph may watch this run.")
    last_seq = models.PositiveIntegerField(default=0, help_text="The sequence number of the "
                                           "latest event.")
    metrics = models.JSONField(default=dict, blank=True, help_text="The latest value of "
                               "each metric.")
    files = models.JSONField(default=dict, blank=True, help_text="Results: format → file "
                             "name in the run's folder, or the error that kept it from "
                             "being made.")

    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "status"]),
            models.Index(fields=["status", "queue", "created_at"]),
            models.Index(fields=["graph", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"run {self.id} of {self.graph} ({self.status})"

    @property
    def folder(self) -> Path:
        """Checkpoints and results: SHIPYARD_HOME/jobs/<id> (shared by every worker)."""
        return Path(settings.JOBS_DIR) / str(self.id)

    @property
    def finished(self) -> bool:
        return self.status not in self.ACTIVE


class JobEvent(models.Model):
    """One thing a run reported, numbered in order within its run."""

    class Type(models.TextChoices):
        STATUS = "status"
        METRIC = "metric"
        ATTENTION = "attention"
        SAMPLE = "sample"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=12, choices=Type.choices)
    step = models.PositiveIntegerField(default=0)
    time = models.FloatField(help_text="Unix time when the run reported it.")
    name = models.CharField(max_length=200, blank=True, help_text="metric name, or the "
                            "attention module's path")
    value = models.FloatField(null=True, blank=True)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["job", "seq"]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="one_event_seq")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.seq} {self.type}"
