"""The war room of an incident, what is waiting to be posted there, and Slack's users."""

from django.db import models

from incidents.models import Incident


class WarRoom(models.Model):
    """An incident's Slack channel and its pinned card; created before the channel exists."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="war_room")
    channel_id = models.CharField(max_length=32, blank=True)
    channel_name = models.CharField(max_length=80, blank=True)
    card_ts = models.CharField(max_length=32, blank=True)
    # One drain at a time per room keeps the thread in order (a lease, not a lock).
    draining_until = models.DateTimeField(null=True, blank=True)
    last_nudged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.channel_name or f"war room of #{self.incident_id}"


class SlackPost(models.Model):
    """One thing to do in the war room, retried until done or given up (the outbox)."""

    class Kind(models.TextChoices):
        OPEN = "open", "Open the room"
        CARD = "card", "Update the card"
        THREAD = "thread", "Reply under the card"
        CHANNEL = "channel", "Post in the channel"
        INVITE = "invite", "Invite people"

    room = models.ForeignKey(WarRoom, on_delete=models.CASCADE, related_name="posts")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["room", "id"],
                name="slackpost_pending",
                condition=models.Q(sent_at__isnull=True, failed_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class SlackUser(models.Model):
    """Slack's user id for an email (or that it has none), cached between lookups."""

    email = models.EmailField(unique=True)
    slack_id = models.CharField(max_length=32, blank=True, db_index=True)
    checked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.email} -> {self.slack_id or 'unknown'}"


class SlackRequest(models.Model):
    """A signed request already served: the same signature twice is a replay."""

    signature = models.CharField(max_length=100, unique=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"signed request at {self.received_at}"
