from django.apps import AppConfig


class CoordinationConfig(AppConfig):
    """Running the incident where responders are: the Slack war room, /inc, the status page."""

    name = "coordination"
    verbose_name = "Coordination"

    def ready(self) -> None:
        # Register the tasks in every process: the outbox queues its drain by name.
        from . import tasks  # noqa: F401
