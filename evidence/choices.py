from django.db import models


class EvidenceStatus(models.TextChoices):
    OK = "ok", "Found something"
    EMPTY = "empty", "Found nothing"
    ERROR = "error", "Failed"
    TIMEOUT = "timeout", "Timed out"


class Collector(models.TextChoices):
    CHANGES = "changes", "Recent changes"
    ALERTS = "alerts", "Related alerts"
    METRICS = "metrics", "Golden signals"
    LOGS = "logs", "Error logs"
    SIMILAR = "similar", "Similar past incidents"
