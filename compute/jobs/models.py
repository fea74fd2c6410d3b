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
    source = models.CharField(max_length=500, blank=True, help_text="Where the data comes "
                              "from: a web address (http or https) or words; empty: not "
                              "declared.")
    licence = models.CharField(max_length=200, blank=True, help_text="Its licence, e.g. "
                               "CC-BY-4.0; empty: not declared.")
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
    priority = models.SmallIntegerField(default=0, help_text="Higher starts sooner; set by "
                                        "an administrator (docs/queue.md).")
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="retries", help_text="The failed or cancelled "
                                 "run an administrator requeued as this one.")
    weights_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="weights_used_by", help_text="The finished "
                                   "training run whose weights this run uses.")
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
    result = models.JSONField(default=dict, blank=True, help_text="What a benchmark (or "
                              "FPGA) run measured: its machine, rows and per-node costs.")
    manifest = models.JSONField(default=dict, blank=True, help_text="A training run's "
                                "dataset manifest (Croissant JSON-LD), recorded when its "
                                "data is loaded.")

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
        PROGRESS = "progress"
        BENCHMARK = "benchmark"
        NODE_COSTS = "node_costs"
        STAGE = "stage"
        COMPARISON = "comparison"
        SWEEP = "sweep"
        TOOL = "tool"

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


class Queue(models.Model):
    """A compute queue's state as administrators set it (a row exists once it is touched:
    a queue without one is running)."""

    name = models.CharField(max_length=16, primary_key=True)
    paused = models.BooleanField(default=False, help_text="Nothing new starts here; runs "
                                 "going on go on.")
    paused_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    paused_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}{' (paused)' if self.paused else ''}"


class Worker(models.Model):
    """A worker process that serves queues, as it last said it was (heartbeat)."""

    hostname = models.CharField(max_length=200, unique=True, help_text="Celery's node name.")
    host = models.CharField(max_length=200, blank=True)
    queues = models.JSONField(default=list)
    pool = models.CharField(max_length=32, blank=True)
    concurrency = models.PositiveSmallIntegerField(default=1)
    device = models.CharField(max_length=200, blank=True, help_text="GPU name, or the CPU "
                              "model and cores.")
    memory = models.PositiveBigIntegerField(null=True, blank=True, help_text="GPU memory, "
                                            "bytes.")
    started_at = models.DateTimeField(auto_now_add=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    draining = models.BooleanField(default=False, help_text="Finishes its runs and takes "
                                   "no more.")
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class Quota(models.Model):
    """Limits for one user or one group, over the defaults in settings (an empty field:
    the default; a user's quota wins over their groups', and of several groups the most
    generous wins)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                on_delete=models.CASCADE, related_name="quota")
    group = models.OneToOneField("auth.Group", null=True, blank=True,
                                 on_delete=models.CASCADE, related_name="quota")
    max_queued = models.PositiveIntegerField(null=True, blank=True)
    max_running = models.PositiveIntegerField(null=True, blank=True)
    max_run_seconds = models.PositiveIntegerField(null=True, blank=True)
    max_parameters = models.PositiveBigIntegerField(null=True, blank=True)
    gpu_hours_per_day = models.FloatField(null=True, blank=True)
    gpu_hours_per_week = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=models.Q(user__isnull=False, group__isnull=True)
            | models.Q(user__isnull=True, group__isnull=False),
            name="quota_of_user_or_group")]

    def __str__(self) -> str:
        return f"quota of {self.user or self.group}"


class AdminAction(models.Model):
    """One thing an administrator did to the queue: who, what, when, on which run, queue
    or worker."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                              related_name="+")
    action = models.CharField(max_length=32)
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE,
                            related_name="admin_actions")
    queue = models.CharField(max_length=16, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} at {self.at:%Y-%m-%d %H:%M}"
