"""Postmortems and follow-ups as tests need them, and an incident built through the services."""

from datetime import timedelta

import factory
from django.test import TestCase
from django.utils import timezone

from executor.choices import ActionStatus
from executor.tests.factories import ActionRequestFactory
from incidents.models import Incident, StatusUpdate
from incidents.services import (
    incident_assign_role,
    incident_declare,
    incident_transition,
    status_update_post,
)
from incidents.tests.factories import AlertFactory, IncidentFactory, UserFactory
from learning.models import FollowUp
from runbooks.tests.factories import ready_runbook, sample_document


class FollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FollowUp

    incident = factory.SubFactory(IncidentFactory)
    title = factory.Sequence(lambda n: f"Add an index to orders #{n}")
    owner = factory.SubFactory(UserFactory)
    due_date = factory.LazyFunction(lambda: timezone.localdate() + timedelta(days=7))


def worked_incident(*, severity: str = "SEV2", resolve: bool = True) -> Incident:
    """A SEV2 on checkout worked through the services: alert, runbook, actions, updates."""
    alice = UserFactory(username="alice", first_name="Alice")
    incident = incident_declare(
        title="Checkout database pool exhausted",
        description="Checkout requests time out.",
        severity=severity,
        service="checkout",
        actor=alice,
        generate_runbook=False,
    )
    AlertFactory(
        incident=incident,
        service="checkout-db",
        title="PgPoolExhausted",
        starts_at=incident.detected_at - timedelta(minutes=4),
    )
    runbook = ready_runbook(
        sample_document(
            incident_type="resource_exhaustion",
            hypotheses=["A connection leak in the new checkout release", "Pool size too small"],
        ),
        incident=incident,
    )
    ActionRequestFactory(
        runbook=runbook, step_id="restart_pool", status=ActionStatus.SUCCEEDED,
        result={"summary": "pool restarted"},
    )  # fmt: skip
    ActionRequestFactory(
        runbook=runbook, step_id="kill_queries", status=ActionStatus.FAILED, error="timeout"
    )
    incident_assign_role(incident=incident, role="commander", user=alice, actor=alice)
    status_update_post(
        incident=incident, audience=StatusUpdate.Audience.CUSTOMER,
        body="Checkout is slow; we are on it.", actor=alice,
    )  # fmt: skip
    incident_transition(incident=incident, to_status="monitoring", actor=alice)
    if resolve:
        # The draft is queued after the resolution commits: run it as a worker would.
        with TestCase.captureOnCommitCallbacks(execute=True):
            incident_transition(incident=incident, to_status="resolved", actor=alice)
    incident.refresh_from_db()
    return incident


__all__ = ["FollowUpFactory", "worked_incident"]


def user_with_perms(username: str, *perms: str, **fields):
    """A user holding the given "app.codename" permissions directly (fresh permission cache)."""
    from django.contrib.auth.models import Permission

    user = UserFactory(username=username, **fields)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return type(user).objects.get(pk=user.pk)


def postmortem_editor(username: str = "editor"):
    """Someone who may edit, send to review and publish postmortems."""
    return user_with_perms(username, "learning.change_postmortem", "learning.publish_postmortem")
