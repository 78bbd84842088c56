"""Customer notices: drafts until published by someone allowed; the public status page."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django.utils import timezone

from executor.models import Service
from incidents.choices import TimelineKind
from incidents.services import (
    IncidentError,
    status_update_edit,
    status_update_post,
    status_update_publish,
)
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def publisher():
    user = UserFactory(username="pat")
    user.user_permissions.add(Permission.objects.get(codename="publish_status"))
    return user


@pytest.fixture
def incident():
    Service.objects.create(name="checkout")
    Service.objects.create(name="search")
    return IncidentFactory(severity="SEV2", service="checkout", title="pg-3 OOM")


def test_a_customer_notice_is_a_draft_until_published(client, incident, publisher):
    writer = UserFactory(username="wes")
    draft = status_update_post(
        incident=incident, audience="customer", body="Looking into it", actor=writer
    )
    assert draft.is_draft
    page = client.get("/status/").content.decode()
    assert "Looking into it" not in page and "All systems operational" in page

    status_update_edit(update=draft, body="We are looking into slow checkout.", actor=writer)
    with pytest.raises(IncidentError, match="publish_status"):
        status_update_publish(update=draft, actor=writer)
    status_update_publish(update=draft, actor=publisher)
    with pytest.raises(IncidentError):
        status_update_edit(update=draft, body="changed after the fact", actor=publisher)

    kinds = list(incident.timeline.order_by("id").values_list("kind", "actor__username"))
    assert kinds == [
        (TimelineKind.STATUS_UPDATE, "wes"),
        (TimelineKind.STATUS_EDITED, "wes"),
        (TimelineKind.STATUS_PUBLISHED, "pat"),
    ]
    response = client.get("/status/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "We are looking into slow checkout." in page
    assert "Some systems are affected" in page and "Partial outage" in page
    assert "pg-3 OOM" not in page  # the internal title stays internal
    assert "public" in response["Cache-Control"] and "max-age=30" in response["Cache-Control"]


def test_internal_updates_never_reach_the_page(client, incident):
    status_update_post(incident=incident, audience="internal", body="Restarting pg-3")
    assert "Restarting pg-3" not in client.get("/status/").content.decode()


def test_history_and_feed(client, incident, publisher):
    old = IncidentFactory(
        service="search",
        status="resolved",
        detected_at=timezone.now() - timedelta(days=3),
        resolved_at=timezone.now() - timedelta(days=3),
    )
    ancient = IncidentFactory(service="search", detected_at=timezone.now() - timedelta(days=120))
    for i, text in ((old, "Search was slow; fixed."), (ancient, "Long ago")):
        status_update_publish(
            update=status_update_post(incident=i, audience="customer", body=text),
            actor=publisher,
        )
    page = client.get("/status/").content.decode()
    assert "Search was slow; fixed." in page and "Long ago" not in page
    feed = client.get("/status/feed.atom")
    assert feed["Content-Type"].startswith("application/atom+xml")
    body = feed.content.decode()
    assert "Search was slow; fixed." in body and "Long ago" not in body


def test_the_page_queries_do_not_grow(client, incident, publisher, django_assert_max_num_queries):
    for n in range(6):
        i = IncidentFactory(service="checkout")
        for k in range(3):
            status_update_publish(
                update=status_update_post(incident=i, audience="customer", body=f"{n}.{k}"),
                actor=publisher,
            )
    with django_assert_max_num_queries(6):
        assert client.get("/status/").status_code == 200


def test_publishing_from_the_incident_page(client, incident, publisher):
    draft = status_update_post(incident=incident, audience="customer", body="Draft text")
    client.force_login(UserFactory(username="wes"))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "draft, not published" in page and "Publish to status page" not in page
    client.post(f"/incidents/{incident.pk}/updates/{draft.pk}/publish/")
    draft.refresh_from_db()
    assert draft.is_draft
    client.force_login(publisher)
    assert "Publish to status page" in client.get(f"/incidents/{incident.pk}/").content.decode()
    client.post(f"/incidents/{incident.pk}/updates/{draft.pk}/publish/")
    draft.refresh_from_db()
    assert not draft.is_draft and draft.published_by == publisher


def test_stakeholders_are_emailed(
    settings, incident, publisher, django_capture_on_commit_callbacks
):
    settings.STAKEHOLDER_EMAILS = {"checkout": ["cfo@example.com"], "SEV2": ["vp@example.com"]}
    with django_capture_on_commit_callbacks(execute=True):
        status_update_post(incident=incident, audience="executive", body="Checkout degraded")
        draft = status_update_post(incident=incident, audience="customer", body="Public note")
    assert [m.body for m in mail.outbox] == ["Checkout degraded"]
    with django_capture_on_commit_callbacks(execute=True):
        status_update_publish(update=draft, actor=publisher)
    assert [m.body for m in mail.outbox] == ["Checkout degraded", "Public note"]
    assert mail.outbox[0].to == ["cfo@example.com", "vp@example.com"]
    assert incident.timeline.filter(kind=TimelineKind.STAKEHOLDERS_EMAILED).count() == 2
