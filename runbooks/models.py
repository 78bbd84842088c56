from django.conf import settings
from django.db import models

from incidents.models import Incident

from .choices import RunbookAuthor, RunbookStatus


class Runbook(models.Model):
    """One version of an incident's runbook. The artifact itself is immutable."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="runbooks")
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=12, choices=RunbookStatus.choices, default=RunbookStatus.QUEUED
    )
    author = models.CharField(max_length=8, choices=RunbookAuthor.choices, blank=True)
    model_id = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cache_read_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    artifact = models.JSONField(null=True, blank=True)
    artifact_key = models.CharField(max_length=255, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    validation_errors = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="requested_runbooks",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    # The generating worker's lease: renewed while it works; once it passes, the lease
    # sweep frees the slot and queues the version again (a dead worker renews nothing).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Claims so far; also the fencing token: only the holder of the latest claim may finish.
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["incident", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "version"], name="runbook_incident_version"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "updated_at"], name="runbook_status_updated"),
            models.Index(
                fields=["lease_expires_at"],
                name="runbook_lease",
                condition=models.Q(status="generating"),
            ),
        ]

    def __str__(self) -> str:
        return f"Runbook v{self.version} for incident #{self.incident_id} ({self.status})"


class ModelCallBudget(models.Model):
    """Model calls taken in one minute, shared by every worker (see generation.budget_take)."""

    minute = models.DateTimeField(unique=True)
    calls = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.calls} model calls at {self.minute:%H:%M}"
