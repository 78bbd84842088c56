from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    """Running the incident where responders are: the Slack war room, /inc, the status page."""

    name = "coordination"
    verbose_name = "Coordination"
