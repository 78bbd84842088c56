"""The approval rule, asked the same way by every door."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission

from executor import policy
from executor.choices import Safety
from incidents.tests.factories import UserFactory

from .approval_helpers import approvers_group, make_approver


def _request(safety: str, severity: str, requested_by_id: int | None = None):
    return SimpleNamespace(
        safety=safety,
        incident=SimpleNamespace(severity=severity),
        requested_by_id=requested_by_id,
    )


@pytest.mark.parametrize(
    ("safety", "marked_safe", "needs"),
    [
        (Safety.READ_ONLY, True, False),
        (Safety.REVERSIBLE, True, False),
        (Safety.READ_ONLY, False, True),  # the runbook can make it stricter ...
        (Safety.DESTRUCTIVE, True, True),  # ... never looser
    ],
)
def test_approval_reason(safety, marked_safe, needs):
    assert bool(policy.approval_reason(safety, marked_safe)) is needs


def test_a_class_is_stricter_only_when_it_ranks_higher():
    assert policy.is_stricter(Safety.DESTRUCTIVE, Safety.REVERSIBLE)
    assert policy.is_stricter(Safety.REVERSIBLE, "")
    assert not policy.is_stricter(Safety.REVERSIBLE, Safety.DESTRUCTIVE)


@pytest.mark.parametrize(
    ("safety", "severity", "needed"),
    [
        (Safety.DESTRUCTIVE, "SEV1", 3),
        (Safety.DESTRUCTIVE, "SEV2", 3),
        (Safety.DESTRUCTIVE, "SEV3", 1),
        (Safety.REVERSIBLE, "SEV1", 1),
    ],
)
def test_approvals_required_follows_the_severity_table(settings, safety, severity, needed):
    settings.APPROVALS_REQUIRED_DESTRUCTIVE = 3
    assert policy.approvals_required(_request(safety, severity)) == needed


def test_approval_ttl_comes_from_the_table_unless_overridden(settings):
    settings.APPROVAL_TTL_MINUTES = {}
    assert [policy.approval_ttl(s) for s in ("SEV1", "SEV2", "SEV3", "SEV4")] == [
        timedelta(minutes=15),
        timedelta(hours=1),
        timedelta(hours=4),
        timedelta(days=1),
    ]
    settings.APPROVAL_TTL_MINUTES = {"SEV2": 5}
    assert policy.approval_ttl("SEV2") == timedelta(minutes=5)
    assert policy.approval_ttl("SEV1") == timedelta(minutes=15)


@pytest.mark.django_db
def test_who_may_approve():
    group = approvers_group()
    staff_member = UserFactory(username="staff-member", is_staff=True)
    staff_member.groups.add(group)
    plain_member = UserFactory(username="plain-member", is_staff=False)
    plain_member.groups.add(group)
    staff_without = UserFactory(username="staff-without", is_staff=True)
    inactive = make_approver("inactive")
    type(inactive).objects.filter(pk=inactive.pk).update(is_active=False)
    inactive.refresh_from_db()
    fresh = type(staff_member).objects.get

    request = _request(Safety.DESTRUCTIVE, "SEV3")
    assert policy.may_approve(fresh(pk=staff_member.pk), request)
    assert not policy.may_approve(fresh(pk=plain_member.pk), request)  # the admin refuses them
    assert not policy.may_approve(staff_without, request)
    assert not policy.may_approve(inactive, request)
    assert not policy.may_approve(None, request)
    # Four eyes: not the person who asked for it.
    own = _request(Safety.DESTRUCTIVE, "SEV3", requested_by_id=staff_member.pk)
    assert policy.is_approver(fresh(pk=staff_member.pk))
    assert not policy.may_approve(fresh(pk=staff_member.pk), own)
    assert Permission.objects.filter(group=group, codename="approve_actionrequest").exists()
