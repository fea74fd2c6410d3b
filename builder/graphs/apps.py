from django.apps import AppConfig


class GraphsConfig(AppConfig):
    name = "builder.graphs"
    label = "graphs"
    verbose_name = "Model graphs"
