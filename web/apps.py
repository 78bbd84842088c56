from django.apps import AppConfig


class WebConfig(AppConfig):
    """The ops web UI: pages that read every stage through its selectors and call services."""

    name = "web"
    verbose_name = "Ops web UI"
