"""The incident's admin page at scale: bounded rows and queries, and saving still works."""

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.admin.mixins import NewestRowsInline
from incidents.choices import AlertSourceKind, AlertStatus, TimelineKind
from incidents.models import Alert, AlertSource, Incident, TimelineEvent

from .factories import IncidentFactory

SHOWN = NewestRowsInline.max_rows


def add_rows(incident: Incident, *, events: int, alerts: int) -> None:
    TimelineEvent.objects.bulk_create(
        TimelineEvent(
            incident=incident,
            kind=TimelineKind.NOTE,
            actor_label="system",
            message=f"inc{incident.pk} event {i}",
        )
        for i in range(events)
    )
    source, _ = AlertSource.objects.get_or_create(
        slug="prom", defaults={"name": "prom", "kind": AlertSourceKind.GENERIC, "secret_env": "X"}
    )
    start = timezone.now() - timedelta(days=1)
    Alert.objects.bulk_create(
        Alert(
            source=source,
            incident=incident,
            dedup_key=f"inc{incident.pk}-{i}",
            content_hash="h",
            status=AlertStatus.FIRING,
            title=f"inc{incident.pk} alert {i}",
            labels={"alertname": f"A{i}"},
            first_seen=start,
            last_seen=start + timedelta(seconds=i),
        )
        for i in range(alerts)
    )


class ChangeForm(HTMLParser):
    """The fields a browser would post from the incident's change form."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self.in_form = False
        self.textarea: str | None = None
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        if tag == "form":
            self.in_form = a.get("id") == "incident_form"
        if not self.in_form or "name" not in a and tag != "option":
            return
        if tag == "input" and a.get("type") not in ("submit", "button", "checkbox", "radio"):
            self.fields.append((a["name"], a.get("value") or ""))
        elif tag == "input" and a.get("type") in ("checkbox", "radio") and "checked" in a:
            self.fields.append((a["name"], a.get("value") or "on"))
        elif tag == "textarea":
            self.textarea = a["name"]
            self.fields.append((a["name"], ""))
        elif tag == "select":
            self.select = a["name"]
        elif tag == "option" and self.select and "selected" in a:
            self.fields.append((self.select, a.get("value") or ""))

    def handle_data(self, data: str) -> None:
        if self.textarea:
            name, text = self.fields[-1]
            self.fields[-1] = (name, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self.textarea = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.in_form = False


def change_page(client, incident: Incident):
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return url, response.content.decode(), len(queries)


@pytest.mark.django_db
def test_a_large_incident_renders_bounded_and_saves(admin_client):
    small = IncidentFactory()
    add_rows(small, events=SHOWN + 5, alerts=SHOWN + 5)
    big = IncidentFactory(title="Before", description="Many rows")
    add_rows(big, events=1500, alerts=700)

    change_page(admin_client, small)  # warms the per-process caches (content types)
    _, small_body, small_queries = change_page(admin_client, small)
    url, body, big_queries = change_page(admin_client, big)

    # The same queries whatever the number of rows, and not many of them.
    assert big_queries == small_queries
    assert big_queries <= 15
    # And about the same size: the page does not grow with the incident's rows.
    assert len(body) < 1.5 * len(small_body)
    # The newest rows, as text: no per-row form field.
    for prefix in ("timeline", "alerts"):
        assert len(re.findall(rf'<tr[^>]* id="{prefix}-\d+"', body)) == SHOWN
        names = set(re.findall(rf'name="({prefix}-[^"]*)"', body))
        assert names == {
            f"{prefix}-{n}"
            for n in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")
        }
    assert f"inc{big.pk} event 1499<" in body
    assert f"inc{big.pk} event {1499 - SHOWN}<" not in body
    assert f"inc{big.pk} alert 699<" in body
    assert f"inc{big.pk} alert {699 - SHOWN}<" not in body

    # Each inline links to all its rows: the change list filtered by this incident.
    timeline_url = reverse("admin:incidents_timelineevent_changelist")
    alerts_url = reverse("admin:incidents_alert_changelist")
    link = f"?incident__id__exact={big.pk}"
    assert f'<a href="{timeline_url}{link}">All 1,500 timeline events →</a>' in body
    assert f'<a href="{alerts_url}{link}">All 700 alerts →</a>' in body

    # Saving posts what the browser would: a few dozen fields, not thousands.
    form = ChangeForm()
    form.feed(body)
    data = dict(form.fields)
    assert len(form.fields) < 50
    assert data["title"] == "Before"
    data.update(title="After", _save="Save")
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    big.refresh_from_db()
    assert big.title == "After"
    assert big.description == "Many rows"
    assert big.timeline.count() == 1500
    assert big.alerts.count() == 700


@pytest.mark.django_db
def test_the_linked_change_lists_hold_only_that_incidents_rows(admin_client):
    one, other = IncidentFactory(title="One"), IncidentFactory(title="Other")
    add_rows(one, events=30, alerts=25)
    add_rows(other, events=3, alerts=2)
    for name, plural, total in (("timelineevent", "timeline events", 30), ("alert", "alerts", 25)):
        url = reverse(f"admin:incidents_{name}_changelist")
        with CaptureQueriesContext(connection) as queries:
            body = admin_client.get(url, {"incident__id__exact": one.pk}).content.decode()
        assert re.search(rf'class="paginator">\s*{total} {plural}\s*</p>', body), name
        assert f"inc{one.pk} " in body
        assert f"inc{other.pk} " not in body
        # The filter names the chosen incident and does not list the others.
        assert str(one) in body
        assert str(other) not in body
        assert len(queries) <= 15


@pytest.mark.django_db
def test_a_small_incident_shows_all_its_rows_with_a_link(admin_client):
    incident = IncidentFactory()
    add_rows(incident, events=3, alerts=2)
    _, body, _ = change_page(admin_client, incident)
    assert len(re.findall(r'<tr[^>]* id="timeline-\d+"', body)) == 3
    assert len(re.findall(r'<tr[^>]* id="alerts-\d+"', body)) == 2
    assert "The newest" not in body
    assert "All 3 timeline events →" in body
