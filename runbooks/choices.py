from django.db import models


class RunbookStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    GENERATING = "generating", "Generating"
    READY = "ready", "Ready"
    INVALID = "invalid", "Invalid"
    FAILED = "failed", "Failed"


class RunbookAuthor(models.TextChoices):
    CLAUDE = "claude", "Claude"
    OFFLINE = "offline", "Offline planner"
