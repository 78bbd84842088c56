"""Safe mode: a global switch under which nothing but read-only checks runs.

An approver turns it on by hand, or it turns itself on at an extreme the settings name
(SAFE_MODE_AUTO_SEV1_OPEN open SEV1 incidents, SAFE_MODE_AUTO_ALERTS_PER_MINUTE alerts
in the last minute). Leaving it always takes an approver and a reason. Each turn is a
SafeModeChange row (the latest is the state) and a note on every open incident's timeline.
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone

from incidents.choices import IncidentStatus, Severity, TimelineKind
from incidents.events import timeline_record
from incidents.models import Alert, Incident

from .models import SafeModeChange
from .policy import is_approver, safe_mode_state


class SafeModeError(Exception):
    """A turn of the switch the rules refuse; the message is for the person who asked."""


def _announce(change: SafeModeChange, actor: Any) -> None:
    """A note on every open incident's timeline: responders see why actions stopped."""
    verb = "on" if change.enabled else "off"
    message = f"Safe mode turned {verb} by {change.who}: {change.reason[:300]}"
    for incident_id in Incident.objects.exclude(status=IncidentStatus.RESOLVED).values_list(
        "pk", flat=True
    ):
        timeline_record(
            incident=incident_id,
            kind=TimelineKind.NOTE,
            actor=actor,
            actor_label="" if actor else "executor",
            message=message,
            payload={"safe_mode": change.enabled, "safe_mode_change_id": change.pk},
        )


def _turn(*, enabled: bool, actor: Any, reason: str, automatic: bool = False) -> SafeModeChange:
    with transaction.atomic():
        # Serialise turns: the latest row decides, so two at once must not both pass.
        latest = SafeModeChange.objects.select_for_update().order_by("-created_at", "-id").first()
        if bool(latest and latest.enabled) == enabled:
            raise SafeModeError(f"Safe mode is already {'on' if enabled else 'off'}.")
        change = SafeModeChange.objects.create(
            enabled=enabled, actor=actor, reason=reason[:2000], automatic=automatic
        )
        _announce(change, actor)
    return change


def safe_mode_enable(*, actor: Any, reason: str) -> SafeModeChange:
    """An approver turns safe mode on by hand."""
    if not is_approver(actor):
        raise SafeModeError("Only an approver can turn safe mode on.")
    reason = (reason or "").strip()
    if not reason:
        raise SafeModeError("Say why you turn safe mode on: a reason is required.")
    return _turn(enabled=True, actor=actor, reason=reason)


def safe_mode_disable(*, actor: Any, reason: str) -> SafeModeChange:
    """Leaving safe mode: only an approver, only with a reason."""
    if not is_approver(actor):
        raise SafeModeError("Only an approver can leave safe mode.")
    reason = (reason or "").strip()
    if not reason:
        raise SafeModeError("Say why it is safe to leave safe mode: a reason is required.")
    return _turn(enabled=False, actor=actor, reason=reason)


def safe_mode_auto_reason(now: Any = None) -> str:
    """Why the extremes the settings name are reached now, or "" when they are not."""
    now = now or timezone.now()
    sev1_limit = settings.SAFE_MODE_AUTO_SEV1_OPEN
    if sev1_limit:
        open_sev1 = (
            Incident.objects.filter(severity=Severity.SEV1)
            .exclude(status=IncidentStatus.RESOLVED)
            .count()
        )
        if open_sev1 >= sev1_limit:
            return f"{open_sev1} SEV1 incidents open at once (limit {sev1_limit})"
    alert_limit = settings.SAFE_MODE_AUTO_ALERTS_PER_MINUTE
    if alert_limit:
        recent = Alert.objects.filter(last_seen__gte=now - timedelta(minutes=1)).count()
        if recent >= alert_limit:
            return f"{recent} alerts in the last minute (limit {alert_limit})"
    return ""


def safe_mode_auto_check() -> SafeModeChange | None:
    """Turn safe mode on if an extreme is reached and it is off; the change, or None."""
    reason = safe_mode_auto_reason()
    if not reason or safe_mode_state():
        return None
    try:
        return _turn(enabled=True, actor=None, reason=reason, automatic=True)
    except SafeModeError:  # someone turned it on meanwhile
        return None


def _incident_saved(sender: Any, instance: Incident, **kwargs: Any) -> None:
    if instance.severity == Severity.SEV1 and instance.status != IncidentStatus.RESOLVED:
        transaction.on_commit(safe_mode_auto_check, robust=True)


def connect_signals() -> None:
    """Watch incidents for the automatic trigger (called once, from the app's ready())."""
    post_save.connect(_incident_saved, sender=Incident, dispatch_uid="executor.safe_mode.auto")
