"""The lean path of a webhook delivery: no browser middleware, one statement for one
alert, and a worker that reads only what grouping needs."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from incidents.ingest.grouping import group_alerts
from incidents.models import Alert, Incident, IngestOutbox
from testing.broker import broker_down

from .ingest_helpers import make_source, payload, post, secrets  # noqa: F401

pytestmark = pytest.mark.usefixtures("secrets")

ALERT_TABLE = '"incidents_alert"'


def one_alert(i: int = 0) -> dict:
    return {"title": f"Disk full {i}", "service": "storage", "dedup_key": f"disk-{i}"}


@pytest.mark.django_db(transaction=True)
def test_a_delivery_skips_the_browser_middlewares(client, settings):
    make_source("generic")
    settings.SESSION_SAVE_EVERY_REQUEST = True  # the session middleware would set a cookie
    client.cookies["csrftoken"] = "x" * 32  # and the CSRF one would rotate or check it
    response = post(client, "generic", one_alert())
    assert response.status_code == 202, response.content
    assert response["Content-Length"] == str(len(response.content))  # not a chunked body
    assert not response.cookies  # no session, no CSRF cookie
    assert "X-Frame-Options" not in response  # XFrameOptionsMiddleware never saw it
    assert response.wsgi_request.resolver_match.url_name == "alert"
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "user")
    # SecurityMiddleware sits above the shortcut and still answers.
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
def test_every_other_path_keeps_the_full_stack(client, settings):
    page = client.get("/accounts/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    assert "csrftoken" in page.cookies
    # A path under the prefix that the URLconf does not route to the webhook view is
    # handled as before: CommonMiddleware adds the slash.
    moved = client.get("/hooks/generic")
    assert moved.status_code == 301 and moved["Location"] == "/hooks/generic/"
    assert client.get("/hooks/generic/extra/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_lean_path_keeps_every_refusal_with_its_reason(client, settings):
    make_source("generic")
    settings.INGEST_MAX_BODY_BYTES = 200
    cases = [
        (post(client, "generic", one_alert(), token=None), 401, "unauthorized"),
        (post(client, "generic", one_alert(), token="wrong"), 401, "unauthorized"),
        (post(client, "nope", one_alert()), 404, "unknown_source"),
        (post(client, "generic", one_alert(), content_type="text/plain"), 415, None),
        (post(client, "generic", None, raw=b"{not json"), 400, "invalid_json"),
        (post(client, "generic", {"title": "x" * 300}), 413, "payload_too_large"),
        (post(client, "generic", {"service": "no title"}), 422, "invalid_payload"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.content
        assert response.json()["message"]
        if code:
            assert response.json()["error"] == code
    assert client.get("/hooks/generic/").status_code == 405
    assert Alert.objects.count() == 0 and IngestOutbox.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_one_alert_delivery_is_one_plain_insert(client):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the one-statement insert is a data-modifying CTE")
    source = make_source("generic")
    with broker_down(), CaptureQueriesContext(connection) as queries:
        response = post(client, "generic", one_alert())
    assert response.status_code == 202, response.content
    assert response.json()["created"] == 1
    # The alerts and the outbox row are one statement, outside any transaction block.
    statements = [q["sql"] for q in queries.captured_queries]
    touching = [sql for sql in statements if ALERT_TABLE in sql]
    assert len(touching) == 1, statements
    assert "VALUES" in touching[0] and "unnest" not in touching[0]
    alert = Alert.objects.get()
    assert (alert.source_id, alert.dedup_key, alert.title) == (source.pk, "disk-0", "Disk full 0")
    assert IngestOutbox.objects.get().alert_ids == [alert.pk]
    # A second delivery of the same key is a repeat: it takes the general path, no new row.
    with broker_down():
        again = post(client, "generic", {**one_alert(), "description": "now 100%"})
    assert again.json()["updated"] == 1 and Alert.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_worker_reads_only_the_columns_grouping_needs(client):
    make_source("alertmanager")
    with broker_down():
        post(client, "alertmanager", payload("alertmanager/valid_group_firing.json"))
    ids = IngestOutbox.objects.get().alert_ids
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        group_alerts(ids, timezone.now())  # the worker's pass (the runbook follows on commit)
    incident = Incident.objects.get()
    assert incident.alerts.count() == 2 and incident.service == "checkout"
    loads = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith("SELECT") and f"FROM {ALERT_TABLE}" in q["sql"]
    ]
    assert loads, [q["sql"] for q in queries.captured_queries]
    for sql in loads:
        for heavy in ("raw", "annotations", "content_hash", "dedup_key"):
            assert f'{ALERT_TABLE}."{heavy}"' not in sql, sql
        assert '"incidents_alertsource"' not in sql  # each source read once, not per alert
