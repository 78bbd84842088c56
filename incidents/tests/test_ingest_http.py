"""The webhook's front door: every refusal is a 4xx JSON answer and stores nothing;
random JSON at every endpoint never produces a 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from incidents.ingest.auth import signature_for
from incidents.models import Alert, AlertSource, Incident, IngestOutbox

from .ingest_helpers import HMAC_KEY, eager, make_source, payload, post, post_signed, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secrets", "eager")]

VALID = {"title": "Disk full", "service": "files"}


def nothing_stored() -> bool:
    return not (
        Alert.objects.exists() or IngestOutbox.objects.exists() or Incident.objects.exists()
    )


def assert_refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == code
    assert nothing_stored()


def test_unknown_and_disabled_sources_are_404(client):
    assert_refused(post(client, "nope", VALID), 404, "unknown_source")
    make_source("generic", enabled=False)
    assert_refused(post(client, "generic", VALID), 404, "unknown_source")


def test_bad_or_missing_token_is_401(client):
    make_source("generic")
    assert_refused(post(client, "generic", VALID, token="wrong"), 401, "unauthorized")
    assert_refused(post(client, "generic", VALID, token=None), 401, "unauthorized")
    response = post(client, "generic", VALID, token=None, headers={"HTTP_AUTHORIZATION": "Basic x"})
    assert_refused(response, 401, "unauthorized")


def test_a_source_whose_secret_is_not_set_refuses_everyone(client, monkeypatch):
    make_source("generic", secret_env="HOOK_UNSET_SECRET")
    monkeypatch.delenv("HOOK_UNSET_SECRET", raising=False)
    response = post(client, "generic", VALID, token="")
    assert_refused(response, 401, "unauthorized")
    assert "no secret configured" in response.json()["message"]


def test_hmac_signature(client):
    make_source("generic", auth_mode="hmac", secret_env="HOOK_HMAC")
    assert_refused(post_signed(client, "generic", VALID, key="other-key"), 401, "unauthorized")
    assert_refused(
        post_signed(client, "generic", VALID, signature="sha256=00"), 401, "unauthorized"
    )
    # A bearer token is no substitute for the signature.
    assert_refused(post(client, "generic", VALID), 401, "unauthorized")
    response = post_signed(client, "generic", VALID, key=HMAC_KEY)
    assert response.status_code == 202 and Alert.objects.count() == 1


def test_wrong_content_type_is_415(client):
    make_source("generic")
    response = post(client, "generic", VALID, content_type="text/plain")
    assert_refused(response, 415, "unsupported_media_type")
    response = post(client, "generic", VALID, content_type="application/x-www-form-urlencoded")
    assert_refused(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000])
def test_invalid_json_is_400(client, raw):
    make_source("generic")
    assert_refused(post(client, "generic", None, raw=raw), 400, "invalid_json")


def test_oversized_body_is_413(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    make_source("generic")
    big = VALID | {"description": "x" * 2000}
    assert_refused(post(client, "generic", big), 413, "payload_too_large")


def test_get_is_405(client):
    make_source("generic")
    response = client.get("/hooks/generic/")
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"


def test_csrf_is_not_required(settings):
    from django.test import Client

    make_source("generic")
    strict = Client(enforce_csrf_checks=True)
    assert post(strict, "generic", VALID).status_code == 202


def test_pagerduty_routing_key_authenticates_without_a_header(client, monkeypatch):
    make_source("pagerduty")
    event = payload("pagerduty/valid_trigger.json")
    response = post(client, "pagerduty", event, token=None)
    assert_refused(response, 401, "unauthorized")  # the routing key is not the secret
    monkeypatch.setenv("HOOK_TOKEN", event["routing_key"])
    response = post(client, "pagerduty", event, token=None)
    assert response.status_code == 202 and response.json()["status"] == "success"


def test_pagerduty_invalid_event_answers_like_pagerduty(client):
    make_source("pagerduty")
    response = post(client, "pagerduty", payload("pagerduty/broken_severity.json"))
    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"
    assert nothing_stored()


def test_secrets_never_reach_the_database_or_the_answer(client):
    make_source("generic")
    response = post(client, "generic", VALID)
    assert response.status_code == 202
    from django.db import connection

    with connection.cursor() as cur:
        for table in ("incidents_alert", "incidents_alertsource", "incidents_ingestoutbox"):
            cur.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed table names
            assert "test-token" not in json.dumps(cur.fetchall(), default=str)
    assert "test-token" not in response.content.decode()


def test_a_huge_integer_timestamp_is_422(client):
    make_source("generic")
    response = post(client, "generic", {**VALID, "timestamp": 10**400})
    assert_refused(response, 422, "invalid_payload")
    assert "timestamp" in response.json()["message"]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(client, constant):
    make_source("generic")
    raw = b'{"title": "Disk full", "severity": ' + constant.encode() + b"}"
    assert_refused(post(client, "generic", None, raw=raw), 400, "invalid_json")


def test_nul_and_lone_surrogates_are_cleaned_before_storing(client):
    make_source("generic")
    raw = (
        b'{"title": "Disk\\u0000 full\\ud800", "service": "fi\\u0000les",'
        b' "labels": {"k\\u0000ey": "v\\u0000"}, "annotations": {"note": "\\udfff"}}'
    )
    response = post(client, "generic", None, raw=raw)
    assert response.status_code == 202, response.content
    alert = Alert.objects.get()
    assert (alert.title, alert.service) == ("Disk full?", "files")
    assert alert.labels == {"key": "v"} and alert.annotations == {"note": "?"}
    stored = json.dumps(alert.raw)
    assert "\\u0000" not in stored and "\\ud800" not in stored
    assert alert.raw["title"] == "Disk full?"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from([10**400, -(10**400), "\x00", "a\x00b", "\ud800", "x\udfffy"]),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=15), children, max_size=6)
    ),
    max_leaves=25,
)
# Random values under the keys each format reads, so the parsers' deep paths are exercised.
KEYS = [
    "title", "status", "dedup_key", "severity", "service", "labels", "annotations",
    "source_url", "timestamp", "group_key", "version", "groupKey", "alerts", "startsAt",
    "endsAt", "fingerprint", "generatorURL", "externalURL", "truncatedAlerts", "routing_key",
    "event_action", "payload", "summary", "source", "links", "images", "custom_details",
    "alert_cycle_key", "alert_transition", "alert_title", "alert_priority", "tags", "date",
    "last_updated", "alert_id", "alert_scope", "org", "link",
    "kind", "version", "previous_version", "author", "started_at", "finished_at", "id",
    "deployment", "deployment_status", "state", "workflow_run", "workflow", "repository",
    "created_at", "ref", "sha", "task", "name", "path", "conclusion", "run_started_at",
]  # fmt: skip
shaped = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30)
    | st.sampled_from([10**400, 1e308, float("nan"), "\x00", "a\x00b", "\ud800"])
    | st.sampled_from(["firing", "resolved", "trigger", "resolve", "4", "Recovered",
                       "2024-05-01T10:00:00Z", "https://x.example/", "critical",
                       "deploy", "success", "completed", "Deploy", "in_progress"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS), children, max_size=8),
    max_leaves=30,
)  # fmt: skip


def _post_any(client, kind: str, body, raw: bytes | None = None):
    """Post as the source expects: GitHub signs and names its event in a header."""
    if kind != "github":
        return post(client, kind, body, raw=raw)
    data = raw if raw is not None else json.dumps(body).encode()
    return client.post(
        "/hooks/github/",
        data=data,
        content_type="application/json",
        HTTP_X_GITHUB_EVENT="deployment_status" if len(data) % 2 else "workflow_run",
        HTTP_X_HUB_SIGNATURE_256=signature_for(HMAC_KEY.encode(), data),
    )


def _make_any(kind: str):
    if kind == "github":
        return make_source(kind, auth_mode="hmac", secret_env="HOOK_HMAC")
    return make_source(kind)


ALL_KINDS = ["alertmanager", "pagerduty", "datadog", "generic", "github", "change"]


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_random_json_never_gets_a_5xx(client, kind, django_capture_on_commit_callbacks):
    _make_any(kind)

    @hsettings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=json_values | shaped)
    def check(body):
        # Run the on-commit work too: processing must survive whatever parsing accepted.
        with django_capture_on_commit_callbacks(execute=True):
            response = _post_any(client, kind, body)
        assert response.status_code < 500, (body, response.content)
        assert response.status_code in (202, 400, 422), (body, response.content)
        assert response["Content-Type"] == "application/json"

    check()


@pytest.mark.parametrize("kind", ALL_KINDS)
@given(raw=st.binary(max_size=200))
@hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_random_bytes_never_get_a_5xx(client, kind, raw):
    if not AlertSource.objects.filter(slug=kind).exists():
        _make_any(kind)
    response = _post_any(client, kind, None, raw=raw)
    # An empty body arrives without a content type (415); anything else is 400/401/422.
    assert response.status_code in (202, 400, 401, 415, 422), (raw, response)
    assert response["Content-Type"] == "application/json"
