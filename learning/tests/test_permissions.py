"""Who may edit, send to review and publish a postmortem; refusals change nothing.

Editing follows the responder rule (executor/policy.py) or `learning.change_postmortem`;
review and publication take `learning.publish_postmortem` (learning/permissions.py).
"""

import pytest
from django.urls import reverse

from executor.tests.factories import responder
from incidents.choices import TimelineKind
from incidents.models import TimelineEvent
from incidents.tests.factories import IncidentFactory, UserFactory
from learning.choices import PostmortemStatus
from learning.models import Postmortem
from learning.permissions import NOT_A_PUBLISHER, NOT_AN_EDITOR
from learning.services import (
    PermissionRefused,
    postmortem_draft,
    postmortem_transition,
    postmortem_update,
)
from learning.tests.factories import user_with_perms, worked_incident

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _offline(settings):
    settings.ANTHROPIC_API_KEY = ""


def _snapshot(pm: Postmortem) -> tuple:
    pm.refresh_from_db()
    events = TimelineEvent.objects.filter(incident_id=pm.incident_id).count()
    return pm.status, pm.summary, pm.updated_at, events


def _publisher(name: str = "reviewer"):
    return user_with_perms(name, "learning.publish_postmortem")


def test_a_reader_may_not_edit_and_nothing_changes():
    pm = worked_incident().postmortem
    before = _snapshot(pm)
    with pytest.raises(PermissionRefused, match="Only responders"):
        postmortem_update(postmortem=pm, actor=UserFactory(username="reader"), summary="mine")
    assert _snapshot(pm) == before


@pytest.mark.parametrize("who", ["responder", "change permission"])
def test_a_responder_or_the_change_permission_may_edit(who):
    pm = worked_incident().postmortem
    user = (
        responder("on-call")
        if who == "responder"
        else user_with_perms("writer", "learning.change_postmortem")
    )
    postmortem_update(postmortem=pm, actor=user, summary="Edited by " + user.username)
    assert pm.summary == "Edited by " + user.username
    assert pm.incident.timeline.filter(
        kind=TimelineKind.POSTMORTEM, actor=user, message__startswith="Postmortem edited"
    ).exists()


def test_an_inactive_user_with_the_permission_is_refused():
    pm = worked_incident().postmortem
    gone = user_with_perms("gone", "learning.change_postmortem", is_active=False)
    with pytest.raises(PermissionRefused):
        postmortem_update(postmortem=pm, actor=gone, summary="x")


def test_review_and_publication_need_the_publish_permission():
    pm = worked_incident().postmortem
    editor = responder("on-call")
    before = _snapshot(pm)
    with pytest.raises(PermissionRefused, match="publish_postmortem|publishing"):
        postmortem_transition(postmortem=pm, to_status=PostmortemStatus.IN_REVIEW, actor=editor)
    assert _snapshot(pm) == before

    reviewer = _publisher()
    postmortem_transition(postmortem=pm, to_status=PostmortemStatus.IN_REVIEW, actor=reviewer)
    with pytest.raises(PermissionRefused):
        postmortem_transition(postmortem=pm, to_status=PostmortemStatus.PUBLISHED, actor=editor)
    assert pm.status == PostmortemStatus.IN_REVIEW
    # An editor may send it back for more work, and the reviewer publishes it later.
    postmortem_transition(postmortem=pm, to_status=PostmortemStatus.DRAFT, actor=editor)
    postmortem_transition(postmortem=pm, to_status=PostmortemStatus.IN_REVIEW, actor=reviewer)
    postmortem_transition(postmortem=pm, to_status=PostmortemStatus.PUBLISHED, actor=reviewer)
    assert pm.status == PostmortemStatus.PUBLISHED


def test_drafting_on_demand_needs_an_editor():
    incident = IncidentFactory()
    with pytest.raises(PermissionRefused):
        postmortem_draft(incident_id=incident.pk, actor=UserFactory(username="reader"))
    assert not Postmortem.objects.filter(incident=incident).exists()
    assert postmortem_draft(incident_id=incident.pk, actor=None).incident_id == incident.pk


# --- the pages -----------------------------------------------------------------------


def _page(client, incident, query: str = "") -> str:
    response = client.get(reverse("learning:postmortem", args=[incident.pk]) + query)
    assert response.status_code == 200
    return response.content.decode()


def test_the_pages_refuse_a_reader_with_403_and_change_nothing(client):
    incident = worked_incident()
    pm = incident.postmortem
    client.force_login(UserFactory(username="reader"))
    before = _snapshot(pm)

    edit = client.post(reverse("learning:postmortem", args=[incident.pk]), {"summary": "x"})
    assert edit.status_code == 403 and edit.content.decode() == NOT_AN_EDITOR
    review = client.post(reverse("learning:status", args=[incident.pk]), {"to": "in_review"})
    assert review.status_code == 403 and review.content.decode() == NOT_A_PUBLISHER
    back = client.post(reverse("learning:status", args=[incident.pk]), {"to": "draft"})
    assert back.status_code == 403 and back.content.decode() == NOT_AN_EDITOR
    assert _snapshot(pm) == before

    other = IncidentFactory()
    draft = client.post(reverse("learning:draft", args=[other.pk]))
    assert draft.status_code == 403
    assert not Postmortem.objects.filter(incident=other).exists()


def test_a_responder_cannot_publish_through_the_page(client):
    incident = worked_incident()
    client.force_login(responder("on-call"))
    before = _snapshot(incident.postmortem)
    for to in ("in_review", "published"):
        response = client.post(reverse("learning:status", args=[incident.pk]), {"to": to})
        assert response.status_code == 403 and "publish" in response.content.decode()
    assert _snapshot(incident.postmortem) == before


def test_buttons_follow_the_permissions(client):
    incident = worked_incident()
    pm = incident.postmortem

    client.force_login(UserFactory(username="reader"))
    page = _page(client, incident)
    for testid in ("edit", "to-review", "publish", "to-draft"):
        assert f'data-testid="{testid}"' not in page
    assert 'data-testid="pm-read-only"' in page
    assert 'data-testid="pm-editor"' not in _page(client, incident, "?edit=1")
    assert 'data-testid="draft-now"' not in _page(client, IncidentFactory())

    client.force_login(responder("on-call"))
    page = _page(client, incident)
    assert 'data-testid="edit"' in page and 'data-testid="to-review"' not in page
    assert 'data-testid="pm-editor"' in _page(client, incident, "?edit=1")
    assert 'data-testid="draft-now"' in _page(client, IncidentFactory())

    client.force_login(_publisher())
    page = _page(client, incident)
    assert 'data-testid="to-review"' in page and 'data-testid="edit"' not in page
    postmortem_transition(postmortem=pm, to_status=PostmortemStatus.IN_REVIEW, actor=None)
    page = _page(client, incident)
    assert 'data-testid="publish"' in page and 'data-testid="to-draft"' in page

    client.force_login(responder("on-call"))
    page = _page(client, incident)
    assert 'data-testid="publish"' not in page and 'data-testid="to-draft"' in page
