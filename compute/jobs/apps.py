from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "compute.jobs"
    label = "jobs"
    verbose_name = "Runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imported once the apps are loaded (models): Shipyard's Celery app becomes the
        # current one in every process (web too), so that tasks sent from a view go to its
        # broker, not to Celery's default; and deleting a graph cancels its runs and removes
        # their folders (builder.graphs knows nothing of runs: it sends graph_deleting);
        # deleting a user does the same for all their runs, and deletes their uploads' files.
        from django.contrib.auth import get_user_model
        from django.db.models.signals import pre_delete

        from builder.graphs.signals import graph_deleting
        from compute import celery_app  # noqa: F401

        from . import services

        graph_deleting.connect(services.graph_deleting, dispatch_uid="jobs.graph_deleting")
        pre_delete.connect(services.user_deleting, sender=get_user_model(),
                           dispatch_uid="jobs.user_deleting")
