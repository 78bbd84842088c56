from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator, validate_email
from django.db import models

from incidents.models import Incident
from runbooks.models import Runbook

from .choices import ActionStatus, CheckOutcome, Decision, ExecutionStatus, Safety


class Execution(models.Model):
    """One run of a runbook's checks (the first after generation, or a replay)."""

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="executions")
    status = models.CharField(
        max_length=10, choices=ExecutionStatus.choices, default=ExecutionStatus.RUNNING
    )
    trigger = models.CharField(max_length=16, default="pipeline")  # pipeline | replay | manual
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["status", "started_at"], name="execution_status_started")]

    def __str__(self) -> str:
        return f"Execution #{self.pk} of {self.runbook}"


class CheckRun(models.Model):
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="check_runs")
    check_id = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=8, choices=CheckOutcome.choices)
    summary = models.TextField(blank=True)
    output = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["execution", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["execution", "check_id"], name="checkrun_execution_check"
            ),
        ]

    def __str__(self) -> str:
        return f"[{self.outcome}] {self.check_id}: {self.action}"


class ActionRequest(models.Model):
    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="action_requests")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="action_requests")
    step_id = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    params = models.JSONField(default=dict, blank=True)
    target = models.CharField(max_length=64, blank=True)
    # The target as resolved when planned (executor.services.pinning): what the approver saw.
    target_kind = models.CharField(max_length=12, blank=True)
    target_url = models.CharField(max_length=500, blank=True)
    target_fingerprint = models.CharField(max_length=64, blank=True)
    safety = models.CharField(max_length=12, choices=Safety.choices, blank=True)
    runbook_marked_safe = models.BooleanField(default=False)
    rationale = models.TextField(blank=True)
    approval_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=ActionStatus.choices, default=ActionStatus.PROPOSED
    )
    plan = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="action_requests",
    )
    requested_at = models.DateTimeField(null=True, blank=True)
    # The person whose request produced the proposal (who declared the incident or asked
    # for the runbook version): four eyes counts them as a requester too.
    caused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Each ask for approval is a round; re-asking after expiry starts a new one.
    approval_round = models.PositiveSmallIntegerField(default=1)
    expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["runbook", "step_id"], name="actionrequest_runbook_action"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "requested_at"], name="actionrequest_status_req"),
        ]
        permissions = [
            ("approve_actionrequest", "Can approve or reject action requests"),
            # Held by responders (the `responders` group): declare and change incidents,
            # post updates, regenerate runbooks and run the actions that need no approval.
            ("run_action", "Can act on incidents and run actions that need no approval"),
        ]

    def __str__(self) -> str:
        return f"{self.step_id}: {self.action} ({self.status})"

    @property
    def requester_label(self) -> str:
        """Who asked: a user, or the runbook version that proposed it."""
        if self.requested_by_id:
            return self.requested_by.get_username()
        return f"runbook v{self.runbook.version}"


class Approval(models.Model):
    """A decision on an action request. Written once, never edited."""

    action_request = models.ForeignKey(
        ActionRequest, on_delete=models.PROTECT, related_name="approvals"
    )
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approvals"
    )
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    round = models.PositiveSmallIntegerField(default=1)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-decided_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["action_request", "approver", "round"],
                name="approval_one_per_approver_round",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.approver} on {self.action_request}"


class Target(models.Model):
    """Somewhere a step can run. Secrets stay in the environment: only the variable's name is here."""

    class Kind(models.TextChoices):
        POSTGRES = "postgres", "PostgreSQL"
        SQLITE = "sqlite", "SQLite"
        REDIS = "redis", "Redis"
        HTTP = "http", "HTTP endpoint"
        PROMETHEUS = "prometheus", "Prometheus"
        LOKI = "loki", "Loki"
        SLACK = "slack", "Slack"
        FLY = "fly", "Fly.io app"

    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(r"^[a-z0-9][a-z0-9_-]{0,62}$", "lowercase letters, digits, - and _")
        ],
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    base = models.CharField(
        max_length=500,
        blank=True,
        help_text="Non-secret setting: host or URL without password, or the Fly app name.",
    )
    secret_env = models.CharField(
        max_length=100,
        blank=True,
        validators=[RegexValidator(r"^[A-Z][A-Z0-9_]*$", "an environment variable name")],
        help_text="Name of the environment variable holding the secret (DSN with password, "
        "token, webhook URL). The value itself never enters the database.",
    )
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def clean(self) -> None:
        if not self.base and not self.secret_env:
            raise ValidationError("Give a base setting, the name of a secret variable, or both.")
        try:
            password = urlsplit(self.base).password if "://" in self.base else None
        except ValueError as exc:
            raise ValidationError({"base": f"Not a valid URL: {exc}"}) from exc
        if password:
            raise ValidationError(
                {"base": "Do not put a password here; name the variable that holds it instead."}
            )


MAX_SERVICE_OWNERS = 50


def validate_owner_emails(value: object) -> None:
    """A list of distinct, valid email addresses (Slack finds people by email)."""
    if not isinstance(value, list):
        raise ValidationError("A list of email addresses.")
    if len(value) > MAX_SERVICE_OWNERS:
        raise ValidationError(f"At most {MAX_SERVICE_OWNERS} owners.")
    for email in value:
        if not isinstance(email, str):
            raise ValidationError("A list of email addresses.")
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ValidationError(f"{email[:100]!r} is not an email address.") from exc


class Service(models.Model):
    """An entry of the service catalog: who owns it and where it runs."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9_.\-]{1,100}$", "letters, digits, . _ -")],
    )
    team = models.CharField(max_length=100, blank=True)
    # Emails, not accounts: an owner need not use this site to be invited to a war room.
    owners = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_owner_emails],
        help_text="Emails of the people who own the service; invited to its incidents' "
        "Slack war rooms.",
    )
    description = models.TextField(blank=True)
    targets = models.ManyToManyField(Target, blank=True, related_name="services")
    links = models.JSONField(
        default=list, blank=True, help_text='Dashboards and docs: [{"label": "...", "url": "..."}]'
    )
    golden_signals = models.JSONField(
        default=dict,
        blank=True,
        help_text="PromQL per golden signal, read around an incident's onset: "
        '{"errors": "...", "latency": "...", "traffic": "...", "saturation": "..."}',
    )
    dependencies = models.JSONField(
        default=list, blank=True, help_text="Names of the services this one depends on."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SafeModeChange(models.Model):
    """One turn of the safe-mode switch: on or off, by whom and why. Append-only; the
    current state is the latest row (none at all means off)."""

    enabled = models.BooleanField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="safe_mode_changes",
    )
    automatic = models.BooleanField(default=False)  # turned on by a threshold, not a person
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = ["created_at", "id"]

    def __str__(self) -> str:
        return f"safe mode {'on' if self.enabled else 'off'} by {self.who}: {self.reason[:60]}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("safe mode changes are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("safe mode changes are append-only")

    @property
    def who(self) -> str:
        if self.actor_id:
            return self.actor.get_username()
        return "automatic" if self.automatic else "system"
