from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "compute.jobs"
    label = "jobs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Make Shipyard's Celery app the current one in every process (web too), so that
        # tasks sent from a view go to its broker, not to Celery's default.
        from compute import celery_app  # noqa: F401
