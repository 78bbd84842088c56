"""Non-finite numbers (NaN, Infinity, 1e999) are not JSON, wherever a webhook puts them;
an oversized webhook body closes its connection and says so."""

import http.client
import json
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from incidents import jsonsafe
from incidents.models import Alert, Incident, IngestOutbox

from .ingest_helpers import TOKEN, eager, make_source, post, secrets  # noqa: F401

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+309", "123456e400"]


@pytest.mark.parametrize("token", NON_FINITE)
def test_loads_refuses_non_finite_numbers(token):
    with pytest.raises(jsonsafe.NonFiniteNumber):
        jsonsafe.loads('{"a": [1, {"b": ' + token + "}]}")
    assert jsonsafe.loads('{"a": [1.5e308, -2e-400, 10e2]}') == {"a": [1.5e308, -0.0, 1000.0]}


def test_non_finite_paths_walks_parsed_data():
    doc = {"a": [1.0, {"b": float("nan")}], "c": float("-inf"), "d": "NaN", "e": 10**400}
    assert sorted(jsonsafe.non_finite_paths(doc)) == ["$.a[1].b", "$.c"]
    assert jsonsafe.non_finite_paths({"ok": [1, 2.5, None, True]}) == []
    with pytest.raises(jsonsafe.NonFiniteNumber, match=r"\$\.a\[1\]\.b"):
        jsonsafe.ensure_finite({"a": [1.0, {"b": float("nan")}]})
    with pytest.raises(ValueError):
        jsonsafe.dumps({"x": float("inf")})


# A random document in which one number is written as a non-finite literal.
MARK = "__non_finite__"
leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.just(MARK)
documents = st.dictionaries(
    st.sampled_from(["title", "service", "severity", "labels", "alerts", "timestamp", "value"]),
    st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.text(max_size=8), children, max_size=3)
        ),
        max_leaves=12,
    ),
    min_size=1,
    max_size=6,
).filter(lambda d: MARK in json.dumps(d))


@pytest.mark.django_db
@pytest.mark.usefixtures("secrets", "eager")
@pytest.mark.parametrize("kind", ["alertmanager", "pagerduty", "datadog", "generic"])
def test_any_non_finite_number_anywhere_is_400(client, kind):
    make_source(kind)

    @hsettings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(body=documents, literal=st.sampled_from(NON_FINITE))
    def check(body, literal):
        raw = json.dumps(body).replace(json.dumps(MARK), literal).encode()
        response = post(client, kind, None, raw=raw)
        assert response.status_code == 400, (raw, response.content)
        assert response.json()["error"] == "invalid_json"
        assert not (
            Alert.objects.exists() or IngestOutbox.objects.exists() or Incident.objects.exists()
        )

    check()


@pytest.mark.django_db
@pytest.mark.usefixtures("secrets", "eager")
def test_a_413_says_the_connection_closes(client, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    make_source("generic")
    response = post(client, "generic", {"title": "x" * 5000})
    assert response.status_code == 413
    assert response["Connection"] == "close"
    small = post(client, "generic", {"title": "Disk full"})
    assert small.status_code == 202 and not small.has_header("Connection")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("secrets", "eager")
def test_after_a_413_the_development_server_serves_the_next_delivery(live_server, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    make_source("generic")
    url = urlsplit(live_server.url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    try:
        big = b'{"title": "' + b"x" * 50_000 + b'"}'
        conn.request("POST", "/hooks/generic/", body=big, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 413
        # Same connection unless the server said it closes it.
        if response.will_close:
            conn.close()
        conn.request("POST", "/hooks/generic/", body=b'{"title": "Disk full"}', headers=headers)
        assert conn.getresponse().status == 202
    finally:
        conn.close()
