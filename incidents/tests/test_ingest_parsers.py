"""The payload corpus: every valid file parses to the fields its format names; every
broken one is refused with a message naming what is wrong, and nothing is stored."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incidents.ingest.base import PayloadError, parse_time
from incidents.ingest.registry import PARSERS, parse_payload
from incidents.models import Alert, Incident, IngestOutbox

from .ingest_helpers import corpus, eager, make_source, payload, post, secrets  # noqa: F401

BROKEN_MESSAGES = {
    "alertmanager/broken_alert_status.json": "alerts[0].status",
    "alertmanager/broken_alerts_not_list.json": "alerts must be a list",
    "alertmanager/broken_no_labels.json": "alerts[0].labels",
    "alertmanager/broken_not_object.json": "must be an object",
    "alertmanager/broken_starts_at.json": "alerts[0].startsAt",
    "alertmanager/broken_version.json": "version",
    "datadog/broken_no_cycle_key.json": "alert_cycle_key",
    "datadog/broken_no_title.json": "alert_title",
    "datadog/broken_tags_type.json": "tags",
    "datadog/broken_transition.json": "alert_transition",
    "generic/broken_labels.json": "labels",
    "generic/broken_no_title.json": "title",
    "generic/broken_scalar.json": "must be an object",
    "generic/broken_source_url.json": "source_url",
    "generic/broken_status.json": "status",
    "pagerduty/broken_action.json": "event_action",
    "pagerduty/broken_links.json": "links",
    "pagerduty/broken_no_routing_key.json": "routing_key",
    "pagerduty/broken_no_summary.json": "payload.summary",
    "pagerduty/broken_resolve_without_key.json": "dedup_key",
    "pagerduty/broken_severity.json": "payload.severity",
}
KINDS = ("alertmanager", "pagerduty", "datadog", "generic")


def test_every_family_registers_its_parser():
    parse_payload("generic", {"title": "load the registry"})
    assert set(PARSERS) == set(KINDS)


def test_every_parser_is_registered_at_startup_before_any_parse():
    # A fresh interpreter: other tests in this process may already have filled PARSERS.
    code = (
        "import django; django.setup(); "
        "from incidents.ingest.registry import PARSERS; print(','.join(sorted(PARSERS)))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "incident_response.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip().splitlines()[-1] == ",".join(sorted(KINDS))


def test_a_huge_integer_timestamp_is_a_payload_error():
    for value in (10**400, -(10**400), float("inf"), float("nan")):
        with pytest.raises(PayloadError):
            parse_time(value, "timestamp")


def test_the_corpus_covers_every_broken_file():
    files = [f for kind in KINDS for f in corpus(kind, "broken")]
    assert sorted(files) == sorted(BROKEN_MESSAGES)


@pytest.mark.parametrize("name", sorted(BROKEN_MESSAGES))
def test_broken_payloads_name_the_problem(name):
    kind = name.split("/")[0]
    with pytest.raises(PayloadError) as err:
        parse_payload(kind, payload(name))
    assert BROKEN_MESSAGES[name] in str(err.value)


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(BROKEN_MESSAGES))
def test_broken_payloads_over_http_are_4xx_json_and_store_nothing(client, secrets, eager, name):  # noqa: F811
    kind = name.split("/")[0]
    make_source(kind)
    response = post(client, kind, payload(name))
    assert response.status_code in (400, 422), response.content
    body = response.json()
    assert BROKEN_MESSAGES[name] in (body.get("message", "") + " ".join(body.get("errors", [])))
    assert Alert.objects.count() == 0
    assert IngestOutbox.objects.count() == 0
    assert Incident.objects.count() == 0


def test_alertmanager_group_parses_every_field():
    result = parse_payload("alertmanager", payload("alertmanager/valid_group_firing.json"))
    first, second = result.alerts
    assert first.dedup_key == "a1b2c3d4e5f60718"  # Alertmanager's fingerprint when sent
    assert len(second.dedup_key) == 16 and second.dedup_key != first.dedup_key  # hashed labels
    assert first.group_key == '{}/{severity="critical"}:{alertname="HighErrorRate"}'
    assert first.status == "firing" and first.source_severity == "critical"
    assert first.title == "Checkout 5xx above 5%" and first.service == "checkout"
    assert first.description == "5xx ratio is 7.2% on checkout-1"
    assert first.labels["instance"] == "checkout-1:8080"
    # Nanoseconds trimmed; Go's zero time and a firing alert's future endsAt are "no end".
    assert first.starts_at == datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert first.ends_at is None and second.ends_at is None
    assert first.source_url.startswith("http://prometheus.example.internal:9090/graph")
    # A javascript: generatorURL is never kept; the group's externalURL stands in.
    assert second.source_url == "http://alertmanager.example.internal:9093"
    assert first.raw["receiver"] == "incident-response"
    assert first.raw["commonLabels"]["service"] == "checkout"
    resolved = parse_payload("alertmanager", payload("alertmanager/valid_group_resolved.json"))
    assert [a.status for a in resolved.alerts] == ["resolved", "resolved"]
    assert resolved.alerts[0].ends_at == datetime(2024, 5, 1, 10, 20, tzinfo=UTC)
    # Same alerts, same dedup keys: the resolution finds the rows the firing created.
    assert [a.dedup_key for a in resolved.alerts] == [a.dedup_key for a in result.alerts]


def test_pagerduty_events_v2_fields():
    result = parse_payload("pagerduty", payload("pagerduty/valid_trigger.json"))
    (alert,) = result.alerts
    assert result.answer == {"dedup_key": "db-replication-lag-prod-db-2"}
    assert alert.status == "firing" and alert.source_severity == "error"
    assert alert.title == "Replication lag above 30s on prod-db-2"
    assert alert.service == "postgres"
    assert alert.labels == {
        "source": "prod-db-2.example.internal",
        "component": "postgres",
        "group": "prod-datapipe",
        "class": "replication",
    }
    assert '"lag_seconds": 42' in alert.description
    assert alert.source_url == "https://grafana.example.internal/d/pg"
    assert "ftp://nope" not in alert.annotations.values()
    assert alert.annotations["image_0"] == "https://grafana.example.internal/render/pg.png"
    assert alert.starts_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
    for action, status in (("acknowledge", "acknowledged"), ("resolve", "resolved")):
        (update,) = parse_payload("pagerduty", payload(f"pagerduty/valid_{action}.json")).alerts
        assert update.status == status and update.update_only
        assert update.dedup_key == "db-replication-lag-prod-db-2"
    generated = parse_payload(
        "pagerduty", payload("pagerduty/valid_trigger_without_dedup_key.json")
    )
    again = parse_payload("pagerduty", payload("pagerduty/valid_trigger_without_dedup_key.json"))
    assert len(generated.answer["dedup_key"]) == 32
    assert generated.answer["dedup_key"] != again.answer["dedup_key"]


def test_datadog_template_variables():
    (alert,) = parse_payload("datadog", payload("datadog/valid_triggered.json")).alerts
    assert alert.dedup_key == "4621342735934716734"  # $ALERT_CYCLE_KEY
    assert alert.status == "firing" and alert.source_severity == "P2"
    assert alert.service == "storefront"  # from $TAGS
    assert alert.labels["env"] == "prod" and alert.labels["host"] == "web-1"
    assert alert.group_key == "monitor:98765"
    assert alert.starts_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)  # epoch milliseconds
    assert "snapshot" not in alert.annotations  # "$SNAPSHOT" left unreplaced is ignored
    assert alert.source_url.startswith("https://app.datadoghq.com/event/")
    (recovered,) = parse_payload("datadog", payload("datadog/valid_recovered.json")).alerts
    assert recovered.status == "resolved" and recovered.dedup_key == alert.dedup_key
    assert recovered.ends_at == datetime(2024, 5, 1, 10, 10, tzinfo=UTC)


def test_generic_single_and_batch():
    (alert,) = parse_payload("generic", payload("generic/valid_firing.json")).alerts
    assert (alert.dedup_key, alert.status, alert.source_severity, alert.service) == (
        "queue-backlog-orders",
        "firing",
        "high",
        "orders",
    )
    assert alert.labels == {"env": "prod", "queue": "orders"}
    batch = parse_payload("generic", payload("generic/valid_batch.json")).alerts
    # No dedup_key: the same title/service/labels is the same alert.
    assert batch[0].dedup_key == batch[1].dedup_key != batch[2].dedup_key
    assert batch[2].dedup_key == "cert-expired"


def test_sizes_are_bounded():
    huge = {
        "title": "x" * 10_000,
        "description": "d" * 100_000,
        "dedup_key": "k" * 5_000,
        "labels": {f"l{i}": "v" * 5000 for i in range(500)},
    }
    (alert,) = parse_payload("generic", huge).alerts
    assert len(alert.title) == 200 and len(alert.description) == 8000
    assert alert.dedup_key.startswith("sha256:") and len(alert.dedup_key) <= 255
    assert len(alert.labels) == 64 and max(len(v) for v in alert.labels.values()) == 1000
    assert alert.raw == {"_truncated": True, "bytes": alert.raw["bytes"]}


def test_too_many_alerts_in_one_payload(settings):
    settings.INGEST_MAX_ALERTS_PER_PAYLOAD = 5
    with pytest.raises(PayloadError, match="limit is 5"):
        parse_payload("generic", [{"title": f"a{i}"} for i in range(6)])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("2024-05-01T10:00:00.000+0000", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        (1714557600, datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("1714557600000", datetime(2024, 5, 1, 10, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", None),
        (None, None),
    ],
)
def test_parse_time(value, expected):
    assert parse_time(value, "t") == expected


@pytest.mark.parametrize("value", ["soon", True, [1], 1e300])
def test_parse_time_refuses(value):
    with pytest.raises(PayloadError):
        parse_time(value, "t")
