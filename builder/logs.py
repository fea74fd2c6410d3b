"""Log lines as JSON (SHIPYARD_LOG_FORMAT=json): one object per line, for a log collector.

Every line written while a worker runs a job carries the job's id (`run_id`): the worker
wraps the run in `job_context` (compute/jobs/tasks.py), and so does each thread the run
starts that logs (its event publisher), since a new thread starts with no context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_run_id: ContextVar[int | None] = ContextVar("shipyard_run_id", default=None)


def current_run_id() -> int | None:
    """The id of the job this thread is running, None outside a run."""
    return _run_id.get()


@contextmanager
def job_context(job_id: int) -> Iterator[None]:
    """Log lines written inside carry `run_id` = job_id."""
    token = _run_id.set(int(job_id))
    try:
        yield
    finally:
        _run_id.reset(token)


class RunIdFilter(logging.Filter):
    """Puts the current run's id on every record (None outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = current_run_id()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, run_id when
    the line was written during a run, process id, and the traceback when there is one.
    A message's own newlines stay inside its JSON string."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        run_id = getattr(record, "run_id", None)
        if run_id is None:
            run_id = current_run_id()
        if run_id is not None:
            line["run_id"] = run_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def logging_config(log_format: str, level: str) -> dict[str, object]:
    """Django's LOGGING: plain lines (the default) or JSON (`json`), to standard error."""
    if log_format not in ("text", "json"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"SHIPYARD_LOG_FORMAT must be text or json, got "
                                   f"{log_format!r}")
    handler: dict[str, object] = {"class": "logging.StreamHandler", "filters": ["run_id"]}
    if log_format == "json":
        handler["formatter"] = "json"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"run_id": {"()": "builder.logs.RunIdFilter"}},
        "formatters": {"json": {"()": "builder.logs.JsonFormatter"}},
        "handlers": {"console": handler},
        "root": {"handlers": ["console"], "level": level},
    }
