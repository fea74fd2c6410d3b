from django.apps import AppConfig


class GraphsConfig(AppConfig):
    name = "builder.graphs"
    label = "graphs"
    verbose_name = "Model graphs"

    def ready(self) -> None:
        # The engine reads its limits (SHIPYARD_MAX_NODES ..., and SQL's
        # SHIPYARD_SQL_TIMEOUT_MS and SHIPYARD_SQL_MAX_ROWS) from the environment on each
        # call; read them once here too, so that a bad value stops the app at start-up
        # instead of failing every save, inspect and script with a 500.
        from django.core.exceptions import ImproperlyConfigured

        from compute.engine import Limits
        from compute.engine.sql import SqlLimits

        try:
            Limits.from_env()
            SqlLimits.from_env()
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
