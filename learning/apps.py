from django.apps import AppConfig


class LearningConfig(AppConfig):
    """After the incident: postmortems, follow-ups, reliability metrics, reports, handoffs."""

    name = "learning"
    verbose_name = "Learning"
