"""The authentication backend: Django's permission rules, in one query."""

import pytest
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incident_response.auth_backends import OneQueryModelBackend
from incidents.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def _fresh(user):
    return type(user).objects.get(pk=user.pk)  # no permission cache yet


def test_the_users_own_and_their_groups_permissions_in_one_query():
    user = UserFactory()
    user.user_permissions.add(_perm("run_action"))
    group = Group.objects.create(name="approvers-test")
    group.permissions.add(_perm("approve_actionrequest"), _perm("run_action"))
    user.groups.add(group)
    asking = _fresh(user)
    with CaptureQueriesContext(connection) as queries:
        got = OneQueryModelBackend().get_all_permissions(asking)
    assert len(queries) == 1
    assert got == ModelBackend().get_all_permissions(_fresh(user))
    assert got == {"executor.run_action", "executor.approve_actionrequest"}


def test_it_is_the_configured_backend_and_answers_has_perm_from_its_cache():
    user = _fresh(UserFactory())
    user.groups.add(group := Group.objects.create(name="responders-test"))
    group.permissions.add(_perm("run_action"))
    user = _fresh(user)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm("executor.run_action")
        assert not user.has_perm("executor.approve_actionrequest")
    assert len(queries) == 1


def test_inactive_users_hold_nothing_and_superusers_everything():
    inactive = UserFactory(is_active=False)
    inactive.user_permissions.add(_perm("run_action"))
    assert OneQueryModelBackend().get_all_permissions(_fresh(inactive)) == set()
    root = _fresh(UserFactory(is_superuser=True))
    assert len(OneQueryModelBackend().get_all_permissions(root)) == Permission.objects.count()
