"""The Celery app the workers run: `celery -A compute.celery_app worker -Q cpu`, or
`shipyard worker`. Settings come from Django's (the CELERY_* names in builder/settings.py).

Queues: `cpu`, `gpu` (workers on machines with CUDA) and `fpga`. A task carries a job id
and nothing else; the Job row is the truth about a run.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "builder.settings")

app = Celery("shipyard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["compute.jobs"])
