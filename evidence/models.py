"""What the context stage found before anyone planned: one set per gathering, its items."""

from django.db import models

from incidents.models import Incident

from .choices import Collector, EvidenceStatus


class EvidenceSet(models.Model):
    """One gathering for an incident. Its items are also stored as one immutable,
    content-addressed artifact (the snapshot at detection); rows are for the page."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="evidence_sets")
    onset = models.DateTimeField(help_text="When the incident is taken to have begun.")
    artifact_key = models.CharField(max_length=300, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"evidence for #{self.incident_id} at {self.created_at:%Y-%m-%d %H:%M}"


class Evidence(models.Model):
    """One item a collector found (or failed to find). `key` is what hypotheses cite."""

    evidence_set = models.ForeignKey(EvidenceSet, on_delete=models.CASCADE, related_name="items")
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="evidence")
    key = models.CharField(max_length=32)
    collector = models.CharField(max_length=16, choices=Collector.choices)
    query = models.TextField(blank=True)
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    summary = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=EvidenceStatus.choices)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["evidence_set", "id"]
        constraints = [
            models.UniqueConstraint(fields=["evidence_set", "key"], name="evidence_key_per_set")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.collector}: {self.summary[:60]}"
