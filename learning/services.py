"""Verbs that change postmortems, follow-ups and handoffs. Views, tasks and commands call these."""

from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from incidents.events import (
    follow_up_event,
    postmortem_drafted_event,
    postmortem_edited_event,
    postmortem_reminder_event,
    postmortem_status_event,
)
from incidents.models import Incident
from incidents.services import incident_outcome_record
from incidents.transitions import IllegalTransition, transition

from .blameless import blameless_issues
from .choices import (
    FOLLOW_UP_OPEN,
    FOLLOW_UP_TRANSITIONS,
    POSTMORTEM_TRANSITIONS,
    FollowUpStatus,
    PostmortemStatus,
    Priority,
)
from .drafting.document import five_whys_markdown
from .drafting.facts import gather
from .drafting.write import write_draft
from .models import SECTIONS, FollowUp, Handoff, Postmortem
from .permissions import (
    NOT_AN_EDITOR,
    may_edit_postmortem,
    may_move_postmortem,
    move_refusal,
)

# SEV1/SEV2 postmortems should be in review this long after resolution.
REVIEW_DUE_HOURS = 48
REVIEW_DUE_SEVERITIES = ("SEV1", "SEV2")
# Follow-ups drafted from a postmortem are due this many days after it, by priority.
DUE_DAYS = {Priority.P1: 7, Priority.P2: 14, Priority.P3: 30}


class LearningError(Exception):
    """A change the rules refuse; the message is meant for the person who asked."""


class PermissionRefused(LearningError):
    """The person who asked may not make this change (learning/permissions.py)."""


def _need_editor(actor: Any) -> None:
    # actor=None is the system itself (the resolution task, a command, a fixture).
    if actor is not None and not may_edit_postmortem(actor):
        raise PermissionRefused(NOT_AN_EDITOR)


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def postmortem_draft(*, incident_id: int, actor: Any = None) -> Postmortem:
    """Draft the incident's postmortem from its data; an existing one is returned untouched."""
    _need_editor(actor)
    existing = Postmortem.objects.filter(incident_id=incident_id).first()
    if existing is not None:
        return existing
    incident = Incident.objects.select_related(
        "created_by", "commander", "comms_lead", "tech_lead", "scribe"
    ).get(pk=incident_id)
    facts = gather(incident)
    # Outside the transaction: Claude may take a while and must not hold locks.
    draft = write_draft(facts)
    doc = draft.document
    try:
        with transaction.atomic():
            postmortem = Postmortem.objects.create(
                incident=incident,
                author=draft.author,
                model_id=draft.model_id,
                summary=doc["summary"],
                impact=doc["impact"],
                contributing_factors=doc["contributing_factors"],
                root_cause=doc["root_cause"],
                root_cause_category=doc["root_cause_category"],
                five_whys=five_whys_markdown(doc["five_whys"]),
                went_well=doc["went_well"],
                to_improve=doc["to_improve"],
                lessons=doc["lessons"],
                facts={k: v for k, v in facts.items() if k != "timeline"},
                timeline=facts["timeline"],
                resolving_actions=facts["resolving_actions"],
                notes=draft.notes,
            )
            today = timezone.localdate()
            for item in doc["action_items"]:
                FollowUp.objects.create(
                    incident=incident,
                    postmortem=postmortem,
                    title=item["title"][:200],
                    priority=item["priority"],
                    owner=incident.commander,
                    due_date=today + timedelta(days=DUE_DAYS[item["priority"]]),
                )
            postmortem_drafted_event(
                incident=incident,
                postmortem_id=postmortem.pk,
                author=draft.author,
                notes=draft.notes,
                actor=actor,
            )
    except IntegrityError:
        # Two drafts raced (the resolution task and a person asking): the first one stays.
        return Postmortem.objects.get(incident_id=incident_id)
    return postmortem


def postmortem_people(postmortem: Postmortem) -> list[str]:
    return list(postmortem.facts.get("people", []))


def postmortem_blameless_issues(postmortem: Postmortem) -> list[str]:
    texts = [getattr(postmortem, name) for name, _ in SECTIONS]
    return blameless_issues(texts, postmortem_people(postmortem))


def postmortem_update(*, postmortem: Postmortem, actor: Any, **sections: str) -> Postmortem:
    """Save edited sections (Markdown); a published postmortem is final."""
    _need_editor(actor)
    unknown = set(sections) - {name for name, _ in SECTIONS}
    if unknown:
        raise LearningError(f"Unknown sections: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        current = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        if current.status == PostmortemStatus.PUBLISHED:
            raise LearningError("A published postmortem is final.")
        changed = [k for k, v in sections.items() if (v or "") != getattr(current, k)]
        if changed:
            Postmortem.objects.filter(pk=current.pk).update(
                updated_at=timezone.now(), **{k: sections[k] or "" for k in changed}
            )
            postmortem_edited_event(
                incident=current.incident_id,
                postmortem_id=current.pk,
                fields=[dict(SECTIONS)[k] for k in changed],
                actor=actor,
            )
    postmortem.refresh_from_db()
    return postmortem


def postmortem_transition(*, postmortem: Postmortem, to_status: str, actor: Any) -> Postmortem:
    """Move along draft → in review → published; leaving draft needs blameless wording."""
    if to_status not in PostmortemStatus.values:
        raise LearningError(f"Unknown status {to_status!r}.")
    if actor is not None and not may_move_postmortem(actor, to_status):
        raise PermissionRefused(move_refusal(to_status))
    postmortem.refresh_from_db()
    if postmortem.status == PostmortemStatus.DRAFT and to_status == PostmortemStatus.IN_REVIEW:
        issues = postmortem_blameless_issues(postmortem)
        if issues:
            raise LearningError(
                "Blameless wording first: name systems and decisions, not people, as causes. "
                + " | ".join(issues[:3])
            )
    now = timezone.now()
    fields: dict[str, Any] = {}
    if to_status == PostmortemStatus.PUBLISHED:
        fields["published_at"] = now
    with transaction.atomic():
        try:
            moved = transition(
                Postmortem,
                pk=postmortem.pk,
                table=POSTMORTEM_TRANSITIONS,
                from_status=postmortem.status,
                to_status=to_status,
                **fields,
            )
        except IllegalTransition as exc:
            raise LearningError(
                f"A postmortem that is {postmortem.get_status_display().lower()} "
                f"cannot move to {to_status.replace('_', ' ')}."
            ) from exc
        if not moved:
            raise LearningError("The postmortem changed meanwhile; reload and try again.")
        postmortem_status_event(
            incident=postmortem.incident_id,
            postmortem_id=postmortem.pk,
            from_status=postmortem.status,
            to_status=to_status,
            actor=actor,
        )
        if to_status == PostmortemStatus.PUBLISHED:
            # The learning loop: what similar incidents show next time.
            incident_outcome_record(
                incident_id=postmortem.incident_id,
                root_cause=postmortem.root_cause,
                category=postmortem.root_cause_category,
                actions=[str(a) for a in postmortem.resolving_actions or []],
                source=f"postmortem #{postmortem.pk}",
            )
    postmortem.refresh_from_db()
    return postmortem


def postmortem_reminders(*, now: datetime | None = None) -> list[int]:
    """Remind once about each SEV1/SEV2 postmortem still a draft 48 h after resolution."""
    now = now or timezone.now()
    due = Postmortem.objects.filter(
        status=PostmortemStatus.DRAFT,
        reminded_at__isnull=True,
        incident__severity__in=REVIEW_DUE_SEVERITIES,
        incident__resolved_at__lte=now - timedelta(hours=REVIEW_DUE_HOURS),
    ).values_list("pk", "incident_id", "status")
    reminded = []
    for pk, incident_id, status in list(due):
        with transaction.atomic():
            if Postmortem.objects.filter(pk=pk, reminded_at__isnull=True).update(reminded_at=now):
                postmortem_reminder_event(
                    incident=incident_id, postmortem_id=pk, status=status, hours=REVIEW_DUE_HOURS
                )
                reminded.append(pk)
    return reminded


def reminder_text(postmortem_ids: list[int], follow_up_ids: list[int]) -> str:
    """One Slack line per reminder just recorded on the timelines."""
    lines = [
        f"Postmortem of incident #{incident_id} is still a draft {REVIEW_DUE_HOURS} h after "
        "resolution: send it to review."
        for incident_id in Postmortem.objects.filter(pk__in=postmortem_ids)
        .order_by("incident_id")
        .values_list("incident_id", flat=True)
    ]
    lines += [
        f"Follow-up overdue since {due:%Y-%m-%d}: {title} ({owner or 'no owner'})"
        for title, due, owner in FollowUp.objects.filter(pk__in=follow_up_ids)
        .order_by("due_date")
        .values_list("title", "due_date", "owner__username")
    ]
    return "\n".join(lines)


# --- follow-ups ---------------------------------------------------------------------


def follow_up_create(
    *,
    incident: Incident,
    title: str,
    actor: Any = None,
    owner: Any = None,
    due_date: date | None = None,
    priority: str = Priority.P2,
    external_url: str = "",
    postmortem: Postmortem | None = None,
) -> FollowUp:
    title = (title or "").strip()
    if not title:
        raise LearningError("A follow-up needs a title.")
    if priority not in Priority.values:
        raise LearningError(f"Unknown priority {priority!r}.")
    if external_url and not external_url.startswith(("https://", "http://")):
        raise LearningError("The ticket link must be an http(s) address.")
    with transaction.atomic():
        item = FollowUp.objects.create(
            incident=incident,
            postmortem=postmortem,
            title=title[:200],
            owner=owner,
            due_date=due_date,
            priority=priority,
            external_url=external_url,
        )
        follow_up_event(
            incident=incident,
            follow_up_id=item.pk,
            change="created",
            title=item.title,
            actor=actor,
            owner=owner.get_username() if owner else "",
            due=due_date.isoformat() if due_date else "",
        )
    return item


def follow_up_set_status(*, follow_up: FollowUp, to_status: str, actor: Any) -> FollowUp:
    if to_status not in FollowUpStatus.values:
        raise LearningError(f"Unknown status {to_status!r}.")
    follow_up.refresh_from_db()
    with transaction.atomic():
        try:
            moved = transition(
                FollowUp,
                pk=follow_up.pk,
                table=FOLLOW_UP_TRANSITIONS,
                from_status=follow_up.status,
                to_status=to_status,
            )
        except IllegalTransition as exc:
            raise LearningError(
                f"A follow-up that is {follow_up.status} cannot move there."
            ) from exc
        if not moved:
            raise LearningError("The follow-up changed meanwhile; reload and try again.")
        follow_up_event(
            incident=follow_up.incident_id,
            follow_up_id=follow_up.pk,
            change="status",
            title=follow_up.title,
            actor=actor,
            to_status=to_status,
        )
    follow_up.refresh_from_db()
    return follow_up


def follow_up_reminders(*, today: date | None = None) -> list[int]:
    """Put each overdue follow-up on its incident's timeline once."""
    today = today or timezone.localdate()
    overdue = FollowUp.objects.filter(
        status__in=FOLLOW_UP_OPEN, due_date__lt=today, reminded_at__isnull=True
    ).values_list("pk", "incident_id", "title", "due_date")
    reminded = []
    now = timezone.now()
    for pk, incident_id, title, due in list(overdue):
        with transaction.atomic():
            if FollowUp.objects.filter(pk=pk, reminded_at__isnull=True).update(reminded_at=now):
                follow_up_event(
                    incident=incident_id,
                    follow_up_id=pk,
                    change="overdue",
                    title=title,
                    due=due.isoformat(),
                )
                reminded.append(pk)
    return reminded


# --- on-call handoff ---------------------------------------------------------------


def handoff_record(*, from_user: Any, to_user: Any, known_risks: str, snapshot: dict) -> Handoff:
    if to_user is None:
        raise LearningError("Say who takes over.")
    if from_user is not None and from_user.pk == to_user.pk:
        raise LearningError("A handoff goes to someone else.")
    return Handoff.objects.create(
        from_user=_user(from_user) or from_user,
        to_user=to_user,
        known_risks=(known_risks or "").strip(),
        snapshot=snapshot,
    )


def user_by_name(username: str) -> Any:
    User = get_user_model()
    try:
        return User.objects.get(**{User.USERNAME_FIELD: username})
    except User.DoesNotExist as exc:
        raise LearningError(f"No user {username!r}.") from exc
