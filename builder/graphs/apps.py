from django.apps import AppConfig


class GraphsConfig(AppConfig):
    name = "builder.graphs"
    label = "graphs"
    verbose_name = "Model graphs"

    def ready(self) -> None:
        # The engine reads its limits (SHIPYARD_MAX_NODES ...) from the environment on each
        # call; read them once here too, so that a bad value stops the app at start-up
        # instead of failing every save and inspect with a 500.
        from django.core.exceptions import ImproperlyConfigured

        from compute.engine import Limits

        try:
            Limits.from_env()
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
