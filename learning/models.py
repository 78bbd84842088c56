from django.conf import settings
from django.db import models

from incidents.models import Incident

from .choices import FollowUpStatus, PostmortemAuthor, PostmortemStatus, Priority

# The sections a person edits, in the order the document shows them (Markdown each).
SECTIONS: list[tuple[str, str]] = [
    ("summary", "Summary"),
    ("impact", "Impact"),
    ("contributing_factors", "Contributing factors"),
    ("root_cause", "Root cause"),
    ("five_whys", "5 whys"),
    ("went_well", "What went well"),
    ("to_improve", "What could be improved"),
    ("lessons", "Lessons learned"),
]


class Postmortem(models.Model):
    """One per incident: drafted from its data when it resolves, then edited by people."""

    incident = models.OneToOneField(Incident, on_delete=models.PROTECT, related_name="postmortem")
    status = models.CharField(
        max_length=12, choices=PostmortemStatus.choices, default=PostmortemStatus.DRAFT
    )
    author = models.CharField(max_length=8, choices=PostmortemAuthor.choices)
    model_id = models.CharField(max_length=100, blank=True)
    summary = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    contributing_factors = models.TextField(blank=True)
    root_cause = models.TextField(blank=True)
    five_whys = models.TextField(blank=True)
    went_well = models.TextField(blank=True)
    to_improve = models.TextField(blank=True)
    lessons = models.TextField(blank=True)
    # snake_case category (the runbook's incident type): what "the same pattern" compares.
    root_cause_category = models.CharField(max_length=64, blank=True)
    # Measured, not written: the figures and key moments the draft was built from.
    facts = models.JSONField(default=dict, blank=True)
    timeline = models.JSONField(default=list, blank=True)
    # The steps that resolved the incident, shown to responders of similar ones.
    resolving_actions = models.JSONField(default=list, blank=True)
    notes = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    reminded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("publish_postmortem", "Can send postmortems to review and publish them"),
        ]
        indexes = [
            models.Index(fields=["status", "-published_at"], name="postmortem_status_published"),
            models.Index(fields=["root_cause_category"], name="postmortem_category"),
        ]

    def __str__(self) -> str:
        return f"Postmortem of incident #{self.incident_id} ({self.status})"


class FollowUp(models.Model):
    """An action item: from a postmortem or added by hand, with an owner and a due date."""

    incident = models.ForeignKey(Incident, on_delete=models.PROTECT, related_name="follow_ups")
    postmortem = models.ForeignKey(
        Postmortem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
    )
    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="follow_ups",
    )
    due_date = models.DateField(null=True, blank=True)
    priority = models.CharField(max_length=2, choices=Priority.choices, default=Priority.P2)
    status = models.CharField(
        max_length=12, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN
    )
    external_url = models.URLField(max_length=500, blank=True, help_text="The ticket elsewhere.")
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["due_date", "priority", "pk"]
        indexes = [
            models.Index(fields=["owner", "status", "due_date"], name="followup_owner_status_due"),
            models.Index(fields=["status", "due_date"], name="followup_status_due"),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_open(self) -> bool:
        return self.status in (FollowUpStatus.OPEN, FollowUpStatus.IN_PROGRESS)


class Handoff(models.Model):
    """An on-call handover: who to whom, when, the known risks, and what the page showed."""

    from_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="handoffs_given",
    )
    to_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="handoffs_taken",
    )
    known_risks = models.TextField(blank=True)
    snapshot = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Handoff at {self.created_at:%Y-%m-%d %H:%M}"
