import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .choices import (
    AlertAuthMode,
    AlertSourceKind,
    AlertStatus,
    ChangeKind,
    ChangeStatus,
    IncidentStatus,
    Severity,
    TimelineKind,
)


class Incident(models.Model):
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    status = models.CharField(
        max_length=16, choices=IncidentStatus.choices, default=IncidentStatus.INVESTIGATING
    )
    service = models.CharField(
        max_length=100, blank=True, help_text="The affected service, as the catalog names it."
    )
    detected_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="declared_incidents",
    )
    commander = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="incident commander",
    )
    comms_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="communications lead",
    )
    tech_lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="technical lead",
    )
    scribe = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="scribe",
    )
    # What resolved it, once a postmortem says so (root cause, category, resolving
    # actions): copied here when the postmortem is published, so the similar-incident
    # search below the learning app can read it.
    outcome = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-detected_at"]
        indexes = [
            models.Index(fields=["status", "-detected_at"], name="incident_status_detected"),
            models.Index(fields=["service", "status"], name="incident_service_status"),
            # The list's open incidents, most urgent first, read in index order: without
            # it every open row is fetched to sort on severity.
            models.Index(
                fields=["severity", "-detected_at", "-id"],
                name="incident_open_by_urgency",
                condition=models.Q(
                    status__in=[s for s in IncidentStatus.values if s != IncidentStatus.RESOLVED]
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} [{self.severity}] {self.title}"


class TimelineEvent(models.Model):
    """Append-only: rows are only ever created, through incidents.events."""

    # PROTECT: an incident with a history is kept, never deleted with it.
    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="timeline")
    kind = models.CharField(max_length=32, choices=TimelineKind.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="timeline_events",
    )
    # "system", "claude", "offline", "worker": who acted when no user did.
    actor_label = models.CharField(max_length=64, blank=True)
    message = models.TextField()
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["incident", "-created_at"], name="timeline_incident_time")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.kind}: {self.message[:60]}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("timeline events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("timeline events are append-only")

    @property
    def who(self) -> str:
        if self.actor_id:
            return self.actor.get_username()
        return self.actor_label or "system"


# --- alert ingest -------------------------------------------------------------

ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,99}$")


class AlertSource(models.Model):
    """A webhook sender. Its secret lives in the environment variable it names."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True, help_text="POST /hooks/<slug>/")
    kind = models.CharField(max_length=16, choices=AlertSourceKind.choices)
    auth_mode = models.CharField(
        max_length=8, choices=AlertAuthMode.choices, default=AlertAuthMode.BEARER
    )
    secret_env = models.CharField(
        max_length=100,
        help_text="Name of the environment variable holding the token or HMAC key "
        "(the secret itself is never stored here).",
    )
    default_service = models.CharField(max_length=100, blank=True)
    severity_mapping = models.JSONField(
        default=dict,
        blank=True,
        help_text='Source severity → SEV1..SEV4, e.g. {"critical": "SEV1", "warning": "SEV3"}.',
    )
    move_to_monitoring_when_cleared = models.BooleanField(default=False)
    suspend_seconds = models.PositiveIntegerField(
        default=0, help_text="An alert resolved within this many seconds opens no incident."
    )
    group_window_seconds = models.PositiveIntegerField(
        default=300,
        help_text="A new alert on a service joins that service's open incident if it "
        "last received an alert within this window.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not ENV_NAME_RE.match(self.secret_env or ""):
            errors["secret_env"] = "An environment variable name: A-Z, 0-9 and _."  # noqa: S105 (a message, not a secret)
        if self.kind == AlertSourceKind.GITHUB and self.auth_mode != AlertAuthMode.HMAC:
            errors["auth_mode"] = "GitHub signs its webhooks: use the HMAC mode."
        mapping = self.severity_mapping
        if not isinstance(mapping, dict) or any(
            not isinstance(k, str) or v not in Severity.values for k, v in mapping.items()
        ):
            errors["severity_mapping"] = (
                f"An object mapping source severities to one of {', '.join(Severity.values)}."
            )
        if errors:
            raise ValidationError(errors)


class Alert(models.Model):
    """One alert per (source, dedup key): repeats update it, never add rows."""

    # No single-column indexes on the two keys: the composite indexes below lead with
    # them, and every index is one more write per stored alert.
    source = models.ForeignKey(
        AlertSource, on_delete=models.PROTECT, related_name="alerts", db_index=False
    )
    incident = models.ForeignKey(
        Incident,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alerts",
        db_index=False,
    )
    dedup_key = models.CharField(max_length=255)
    # Hash of the identifying labels (Alertmanager's fingerprint when it sends one).
    fingerprint = models.CharField(max_length=64, blank=True)
    # Hash of the last delivery's content: an identical re-delivery changes nothing.
    content_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=AlertStatus.choices)
    severity = models.CharField(max_length=4, choices=Severity.choices, default=Severity.SEV3)
    source_severity = models.CharField(max_length=50, blank=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    service = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(default=dict, blank=True)
    annotations = models.JSONField(default=dict, blank=True)
    source_url = models.URLField(max_length=2000, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # When we first heard of the current firing cycle (our clock): the suspend window's start.
    fired_at = models.DateTimeField(null=True, blank=True)
    count = models.PositiveIntegerField(default=1)
    group_key = models.CharField(max_length=255, blank=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(fields=["source", "dedup_key"], name="alert_source_dedup"),
        ]
        indexes = [
            models.Index(fields=["incident", "status"], name="alert_incident_status"),
            models.Index(fields=["source", "group_key"], name="alert_source_group"),
            models.Index(
                fields=["status", "fired_at"],
                name="alert_pending",
                condition=models.Q(incident__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.status}] {self.title}"


class AlertGroup(models.Model):
    """Ingest's bookkeeping for an incident it opened: grouping window and debounce."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="alert_group")
    source = models.ForeignKey(AlertSource, on_delete=models.PROTECT, related_name="groups")
    group_key = models.CharField(max_length=255, blank=True)
    service = models.CharField(max_length=100, blank=True)
    opened_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()
    # When a runbook was last asked for (the first one, then each refresh).
    runbook_requested_at = models.DateTimeField(null=True, blank=True)
    # Alerts joined since then: a refresh is owed, at most one per debounce window.
    refresh_wanted_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    # Alerts without a group key: the hash of the opening alert's stable labels.
    fingerprint = models.CharField(max_length=64, blank=True)
    # The source's "alert storm" incident, collecting alerts past its ceiling of new ones.
    storm = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["service", "-last_alert_at"], name="alertgroup_service_last"),
            models.Index(
                fields=["source", "fingerprint", "-last_alert_at"],
                name="alertgroup_fingerprint",
                condition=~models.Q(fingerprint=""),
            ),
            models.Index(fields=["source", "opened_at"], name="alertgroup_source_opened"),
            models.Index(
                fields=["last_alert_at"],
                name="alertgroup_runbook_due",
                condition=models.Q(runbook_requested_at__isnull=True),
            ),
            models.Index(
                fields=["refresh_wanted_at"],
                name="alertgroup_refresh_due",
                condition=models.Q(refresh_wanted_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Alert group of incident #{self.incident_id}"


class IngestOutbox(models.Model):
    """Work accepted by a webhook and not yet processed. Dispatched on commit; swept if lost."""

    # Unindexed: rows are read by the pending index and pruned after a day.
    source = models.ForeignKey(
        AlertSource, on_delete=models.PROTECT, related_name="outbox", db_index=False
    )
    alert_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "ingest outbox"
        indexes = [
            models.Index(
                fields=["created_at"],
                name="outbox_pending",
                condition=models.Q(processed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        state = "processed" if self.processed_at else "pending"
        return f"Outbox #{self.pk} ({len(self.alert_ids)} alerts, {state})"


class StatusUpdate(models.Model):
    """A written update. Customer-facing text is stored, never sent anywhere automatically."""

    class Audience(models.TextChoices):
        INTERNAL = "internal", "Internal update"
        CUSTOMER = "customer", "Customer-facing notice"
        EXECUTIVE = "executive", "Executive summary"

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="status_updates")
    audience = models.CharField(max_length=12, choices=Audience.choices)
    body = models.TextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="status_updates",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # A customer notice is a draft until someone with publish_status publishes it;
    # internal and executive updates are published when written.
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="published_status_updates",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["incident", "-created_at"], name="statusupdate_incident_time")
        ]
        permissions = [("publish_status", "Can publish customer-facing status updates")]

    def __str__(self) -> str:
        return f"{self.get_audience_display()} for #{self.incident_id}"

    @property
    def is_draft(self) -> bool:
        return self.published_at is None


class ChangeEvent(models.Model):
    """Something that changed a service: a deploy, a config or flag change, a scale,
    a restart or a rollback. Recorded from change webhooks and from our own actions;
    the context stage reads them to find what happened just before an incident began."""

    service = models.CharField(max_length=100, db_index=True)
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    status = models.CharField(
        max_length=12, choices=ChangeStatus.choices, default=ChangeStatus.SUCCEEDED
    )
    version = models.CharField(max_length=255, blank=True, help_text="Version, ref or image.")
    previous_version = models.CharField(max_length=255, blank=True)
    author = models.CharField(max_length=200, blank=True)
    link = models.URLField(max_length=2000, blank=True)
    description = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    # Where it came from: a source slug ("github-prod"), or "executor" for our own actions.
    origin = models.CharField(max_length=60)
    # The sender's id for this change, so a redelivery updates instead of duplicating.
    external_id = models.CharField(max_length=255)
    raw = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["origin", "external_id"], name="change_origin_external")
        ]
        indexes = [models.Index(fields=["service", "-started_at"], name="change_service_time")]

    def __str__(self) -> str:
        return f"{self.kind} {self.service} {self.version}".strip()
