"""metrics.query against a real Prometheus, logs.search against Loki.

Prometheus (Debian's package) scrapes itself and an exporter whose gauges the
tests set; Loki gets its lines through the push API. The log tests run against
Grafana Loki when it is installed and against a server speaking Loki's API for
the one query shape the connector sends (see testing/fakes/loki.py).
"""

import json
import statistics
import time
import uuid
from urllib.parse import parse_qs

import pytest

from executor.choices import CheckOutcome
from executor.connectors import loki as lconn
from executor.connectors import prometheus as pconn
from executor.connectors import promql
from executor.engine import PreparedStep, run_checks
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import ResolvedTarget
from testing.fakes.loki import loki_count, loki_push
from testing.fakes.prometheus import prom_vector
from testing.services import free_port
from testing.waiting import wait_until

METRICS = REGISTRY["metrics.query"]
LOGS = REGISTRY["logs.search"]


def prom_target(url: str, **kw) -> ResolvedTarget:
    # The test Prometheus scrapes every second, so the range query may step by 1 s.
    return ResolvedTarget("prom", "prometheus", url, options={"min_step_seconds": 1}, **kw)


def loki_target(url: str, **kw) -> ResolvedTarget:
    return ResolvedTarget("logs", "loki", url, **kw)


def run_metrics(target: ResolvedTarget, seconds: float = 10.0, **params):
    assert METRICS.validate_params(params) == [], METRICS.validate_params(params)
    return METRICS.run(params, target, time.monotonic() + seconds)


def run_logs(target: ResolvedTarget, seconds: float = 10.0, **params):
    assert LOGS.validate_params(params) == [], LOGS.validate_params(params)
    return LOGS.run(params, target, time.monotonic() + seconds)


def set_and_wait(prometheus, exporter, value: float, **labels: str) -> None:
    """Set a gauge and wait until Prometheus has scraped that value."""
    exporter.set("incident_test_gauge", value, **labels)
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    wait_until(
        lambda: (
            [v for _, v in prom_vector(prometheus.url, f"incident_test_gauge{{{selector}}}")]
            == [value]
        ),
        timeout=20,
        what=f"Prometheus to scrape {value}",
    )


# --- metrics.query against Prometheus -----------------------------------------------------


def test_gauge_change_shows_current_min_max_baseline_and_breach(prometheus, exporter):
    set_and_wait(prometheus, exporter, 5.0, case="minmax")
    set_and_wait(prometheus, exporter, 42.0, case="minmax")
    target = prom_target(prometheus.url)
    query = 'incident_test_gauge{case="minmax"}'

    result = run_metrics(target, query=query, lookback_minutes=1, threshold=40)

    assert result.outcome == "warn"
    assert "breach" in result.summary
    assert result.data["breach"] is True and result.data["breaches"] == 1
    [series] = result.data["series"]
    assert series["labels"]["job"] == "exporter" and series["labels"]["case"] == "minmax"
    assert series["current"] == 42.0
    assert series["min"] == 5.0  # the value before the change is in the window
    assert series["max"] == 42.0
    assert 5.0 <= series["baseline"] <= 42.0
    assert series["change_pct"] == round((42.0 - series["baseline"]) / series["baseline"] * 100, 2)
    assert 2 <= series["points"] <= 61  # one minute at a 1 s step, bounded
    assert result.data["step_seconds"] == 1
    assert "BREACH" in result.text
    json.dumps(result.data, allow_nan=False)  # storable as JSON: no NaN or Inf

    calm = run_metrics(target, query=query, lookback_minutes=1, threshold=100)
    assert calm.outcome == "ok" and calm.data["breach"] is False
    assert "no breach" in calm.summary

    low = run_metrics(target, query=query, lookback_minutes=1, threshold=50, breach_when="below")
    assert low.outcome == "warn" and low.data["series"][0]["breach"] is True


def test_prometheus_scrapes_itself(prometheus):
    result = run_metrics(prom_target(prometheus.url), query='up{job="prometheus"}')
    assert result.outcome == "ok"
    [series] = result.data["series"]
    assert series["current"] == 1.0 and series["labels"]["job"] == "prometheus"
    # Default window 30 min; the default 15 s floor is lifted by the target option to 1 s,
    # so the step is window/60 = 30 s.
    assert result.data["window_minutes"] == 30 and result.data["step_seconds"] == 30


def test_many_series_are_bounded_to_the_top_n(prometheus, exporter):
    for i in range(15):
        exporter.set("incident_test_series", float(i), i=f"{i:02d}")
    wait_until(
        lambda: len(prom_vector(prometheus.url, "incident_test_series")) == 15,
        timeout=20,
        what="15 series scraped",
    )
    result = run_metrics(prom_target(prometheus.url), query="incident_test_series", max_series=5)
    assert result.data["series_total"] == 15
    assert result.data["truncated"] is True
    assert [s["current"] for s in result.data["series"]] == [14.0, 13.0, 12.0, 11.0, 10.0]
    assert "10 more series not shown" in result.text


def test_prometheus_error_answer_becomes_step_error(prometheus):
    target = prom_target(prometheus.url)
    with pytest.raises(StepError, match="unknown function") as err:
        run_metrics(target, query="nosuchfunction(up)")
    assert not isinstance(err.value, StepTimeout)
    assert "bad_data" in str(err.value)


def test_scalar_expression(prometheus):
    result = run_metrics(prom_target(prometheus.url), query="1 + 1", threshold=1)
    [series] = result.data["series"]
    assert series["current"] == 2.0 and series["breach"] is True


# --- PromQL validation ---------------------------------------------------------------------

VALID_PROMQL = [
    "up",
    'up{job="api"}',
    'sum(rate(http_requests_total{status=~"5..",service="checkout"}[5m]))',
    "histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))",
    "min(node_filesystem_avail_bytes / node_filesystem_size_bytes)",
    # The offline planner's shapes, with a service name that uses every allowed character.
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{service="Checkout.api_2-b"}[5m])))',
    "sum(rate(redis_keyspace_misses_total[5m]))",
    "max(process_resident_memory_bytes)",
    'max_over_time(rate(x_total{a!="b"}[5m])[1h:1m]) > 0.5',
    'x{path=~"/users/.*|/orders"} offset 1h',
    'label_replace(up, "host", "$1", "instance", "(.*):.*")',
    'x{a="quote \\" inside"}',
]

INJECTION_PROMQL = [
    "up\n",
    "up\nfoo",
    "up; drop",
    "up `x`",
    "up{job='api'}",
    'up{job="api"',
    'up{job="api}',
    "sum(up",
    "sum(up))",
    "up # comment",
    'up{job="x"}\x00',
    'up{path="/api/v1/admin/tsdb/delete_series"}',
    'up{x="/-/quit"}',
    'up{x="../../etc"}',
    "rate(up[1000d])",
    "rate(up[5m)]",
    "rate(up[now])",
    "up and $x",
    "up \\ 2",
    "x" * 501,
]


@pytest.mark.parametrize("query", VALID_PROMQL)
def test_valid_promql_passes_schema_and_connector(query):
    assert METRICS.validate_params({"query": query}) == []
    assert promql.check_promql(query) == query
    assert query in METRICS.plan({"query": query}, prom_target("http://127.0.0.1:9"))


@pytest.mark.parametrize("query", INJECTION_PROMQL)
def test_injection_promql_is_refused_before_any_request(query):
    schema_problems = METRICS.validate_params({"query": query})
    with pytest.raises(StepBlocked, match="refused PromQL"):
        promql.check_promql(query)
    # Even a run that skipped the schema check is refused before connecting (the
    # target's port is closed: an attempt to connect would be a StepError instead).
    with pytest.raises(StepBlocked):
        METRICS.run(
            {"query": query}, prom_target(f"http://127.0.0.1:{free_port()}"), time.monotonic() + 5
        )
    assert "Would refuse" in METRICS.plan({"query": query}, None)
    if any(c in query for c in "\n;`\x00") or len(query) > 500:
        assert schema_problems  # the schema alone already refuses these


def test_query_is_a_form_field_with_bearer_token_and_no_secret_in_output(http_server, monkeypatch):
    monkeypatch.setenv("PROM_TEST_TOKEN", "s3cret-token")

    def handle(h) -> None:
        body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
        if h.path.endswith("/api/v1/query"):
            body = {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"a": "b"}, "value": [1, "NaN"]}],
                },
            }
        raw = json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(raw)))
        h.end_headers()
        h.wfile.write(raw)

    base = http_server(handle)
    url = base.replace("http://", "http://admin:pa55word@") + "/prom"
    target = prom_target(url, secret_env="PROM_TEST_TOKEN")
    query = 'sum(rate(x{path="/a b?c=d&e"}[5m]))'
    result = run_metrics(target, query=query)

    sent = http_server.requests
    assert [(m, p) for m, p, _, _ in sent] == [
        ("POST", "/prom/api/v1/query_range"),
        ("POST", "/prom/api/v1/query"),
    ]
    for _, _, headers, body in sent:
        assert headers["Authorization"] == "Bearer s3cret-token"
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        form = parse_qs(body.decode())
        assert form["query"] == [query]  # exactly the expression, as one form field
    range_form = parse_qs(sent[0][3].decode())
    assert float(range_form["end"][0]) - float(range_form["start"][0]) == pytest.approx(1800, abs=1)
    assert range_form["step"] == ["30"]
    # A NaN value is reported as None (JSON has no NaN), never invented.
    assert result.data["series"][0]["current"] is None
    shown = (
        json.dumps(result.data)
        + result.summary
        + result.text
        + METRICS.plan({"query": query}, target)
    )
    assert "s3cret-token" not in shown and "pa55word" not in shown


def test_unreachable_prometheus_is_an_error_quickly():
    target = prom_target(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(StepError, match="cannot connect") as err:
        run_metrics(target, seconds=5.0, query="up")
    assert not isinstance(err.value, StepTimeout)
    assert time.monotonic() - started < 1.0


def test_prometheus_that_never_answers_times_out_within_the_deadline(silent_server):
    started = time.monotonic()
    with pytest.raises(StepTimeout):
        run_metrics(prom_target(silent_server.url), seconds=1.0, query="up")
    assert time.monotonic() - started < 1.5


def test_a_stuck_check_does_not_hold_the_others(prometheus, silent_server):
    def step(position: int, url: str) -> PreparedStep:
        params = {"query": "up"}
        return PreparedStep(
            f"s{position}", "metrics.query", params, position, METRICS, prom_target(url)
        )

    started = time.monotonic()
    outcomes = run_checks([step(0, silent_server.url), step(1, prometheus.url)], timeout=1.5)
    assert [o.outcome for o in outcomes] == [CheckOutcome.TIMEOUT, CheckOutcome.OK]
    assert time.monotonic() - started < 1.5 + 1.0


def test_plan_names_the_exact_query_and_hides_credentials():
    target = prom_target("http://u:topsecret@prom.internal:9090")
    plan = METRICS.plan(
        {"query": 'up{job="api"}', "threshold": 0.5, "lookback_minutes": 60}, target
    )
    assert 'query=up{job="api"}' in plan
    assert "http://u:***@prom.internal:9090" in plan and "topsecret" not in plan
    assert "window 60 min, step 60 s" in plan and "above 0.5" in plan


# --- logs.search against Loki -------------------------------------------------------------


def unique_service() -> str:
    return f"svc-{uuid.uuid4().hex[:10]}"


def push_and_wait(url: str, service: str, lines: list[str]) -> None:
    loki_push(url, {"service": service, "env": "test"}, lines)
    wait_until(
        lambda: loki_count(url, service) == len(lines),
        timeout=20,
        what="the pushed lines to be queryable",
    )


def test_count_top_pattern_and_samples(loki_url):
    service, other = unique_service(), unique_service()
    lines = [
        "error: timeout after 120 ms calling 10.0.0.7:5432 for order 3f2a9c1e-7b1d-4c1a-9a55-0c9b7e3d2f11",
        "error: timeout after 95 ms calling 10.0.0.9:5432 for order 6d7e0a44-1c2b-4f00-8e21-aa0b1c2d3e4f",
        "error: timeout after 3001 ms calling 10.0.1.12:5432 for order 0b3c5d7e-9f11-4a22-b333-c444d555e666",
        "error: payment declined trace=deadbeef00112233 code 0x1F",
        "info: served request in 12 ms",
    ]
    loki_push(loki_url, {"service": other, "env": "test"}, ["error: timeout elsewhere 1 ms"])
    push_and_wait(loki_url, service, lines)
    target = loki_target(loki_url)

    result = run_logs(target, service=service, pattern="timeout", lookback_minutes=5)

    assert result.outcome == "warn"
    assert result.data["count"] == 3  # the other service's timeout line is not counted
    assert result.data["truncated"] is False
    assert result.data["top_patterns"][0] == {
        "pattern": "error: timeout after <n> ms calling <ip> for order <id>",
        "count": 3,
    }
    assert len(result.data["samples"]) == 3
    assert all("timeout" in s["line"] for s in result.data["samples"])
    assert result.data["query"] == f'{{service="{service}"}} |= "timeout"'
    assert result.summary.startswith(f"3 lines of {service} contain 'timeout'")

    declined = run_logs(target, service=service, pattern="declined", lookback_minutes=5)
    assert (
        declined.data["top_patterns"][0]["pattern"]
        == "error: payment declined trace=<id> code <id>"
    )

    none = run_logs(target, service=service, pattern="no such text", lookback_minutes=5)
    assert none.outcome == "ok" and none.data["count"] == 0 and none.data["samples"] == []


INJECTION_LINES = [
    "a",
    "b",
    'x"} |~ ".*',
    'path C:\\temp\\"quoted"',
    '{service=~".+"}',
    "a or b",
]
INJECTION_PATTERNS = [
    '"} |~ ".*',
    'x"} |~ ".*"',
    ".*",
    "\\",
    '\\"',
    '"',
    '{service=~".+"}',
    '"} or {service=~".+',
    'a" |= "b',
    "a or b",
    "}",
]


def test_injection_attempts_match_only_as_literal_text(loki_url):
    service = unique_service()
    push_and_wait(loki_url, service, INJECTION_LINES)
    target = loki_target(loki_url)
    for pattern in INJECTION_PATTERNS:
        result = run_logs(target, service=service, pattern=pattern, lookback_minutes=5)
        literal = sum(pattern in line for line in INJECTION_LINES)
        assert result.data["count"] == literal, (pattern, result.data["query"])
        assert all(pattern in s["line"] for s in result.data["samples"])
        # The query keeps its one shape; the pattern sits escaped inside its quotes.
        assert result.data["query"] == f'{{service="{service}"}} |= {lconn.quote(pattern)}'
    # `.*` is not a regex here: only the line that contains those two characters matches.
    assert run_logs(target, service=service, pattern=".*", lookback_minutes=5).data["count"] == 1


def test_the_stand_in_saw_the_documented_request(loki_standin):
    service = unique_service()
    loki_push(loki_standin.url, {"service": service}, ["boom 1"])
    before = len(loki_standin.queries)
    run_logs(loki_target(loki_standin.url), service=service, pattern="boom", lookback_minutes=7)
    [q] = loki_standin.queries[before:]
    assert q["query"] == f'{{service="{service}"}} |= "boom"'
    assert q["limit"] == "1000" and q["direction"] == "backward"
    assert int(q["end"]) - int(q["start"]) == 7 * 60 * 1_000_000_000
    assert q["auth"] is None


def test_service_label_comes_from_the_target(loki_standin):
    service = unique_service()
    loki_push(loki_standin.url, {"app": service}, ["started", "crashed"])
    target = ResolvedTarget("logs", "loki", loki_standin.url, options={"service_label": "app"})
    result = run_logs(target, service=service, pattern="crashed", lookback_minutes=5)
    assert result.data["query"] == f'{{app="{service}"}} |= "crashed"'
    assert result.data["count"] == 1
    bad = ResolvedTarget("logs", "loki", loki_standin.url, options={"service_label": 'app"} |~ "'})
    with pytest.raises(StepBlocked, match="label name"):
        run_logs(bad, service=service, pattern="crashed")


@pytest.mark.parametrize(
    "params",
    [
        {"service": "api", "pattern": "line\nbreak"},
        {"service": "api", "pattern": "tab\there"},
        {"service": "api", "pattern": "nul\x00"},
        {"service": "api", "pattern": "trailing newline\n"},
        {"service": "api", "pattern": ""},
        {"service": "api", "pattern": "x" * 201},
        {"service": 'api"} |~ ".*', "pattern": "error"},
        {"service": "api\n", "pattern": "error"},
        {"service": "a{b}", "pattern": "error"},
    ],
)
def test_refused_log_params(params):
    assert LOGS.validate_params(params) != []  # the schema refuses them
    with pytest.raises(StepBlocked):  # and so does the connector, without a request
        LOGS.run(params, loki_target(f"http://127.0.0.1:{free_port()}"), time.monotonic() + 5)
    assert "Would refuse" in LOGS.plan(params, None)


def test_format_characters_refused_by_the_connector():
    # A right-to-left override would make a plan read differently from the query.
    with pytest.raises(StepBlocked, match="control character"):
        lconn.check_pattern("error\u202e")


def test_loki_errors_and_auth(http_server, monkeypatch):
    monkeypatch.setenv("LOKI_TEST_TOKEN", "tok-loki")
    answers = iter(
        [
            (400, b"parse error at line 1, col 12: syntax error: unexpected IDENTIFIER\n"),
            (401, b"no org id\n"),
        ]
    )

    def handle(h) -> None:
        status, body = next(answers)
        h.send_response(status)
        h.send_header("Content-Type", "text/plain; charset=utf-8")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    url = http_server(handle)
    target = loki_target(url, secret_env="LOKI_TEST_TOKEN")
    with pytest.raises(StepError, match="HTTP 400: parse error at line 1"):
        run_logs(target, service="api", pattern="x")
    with pytest.raises(StepError, match="not authorised") as err:
        run_logs(target, service="api", pattern="x")
    assert "tok-loki" not in str(err.value)
    method, path, headers, _ = http_server.requests[0]
    assert (method, path.split("?")[0]) == ("GET", "/loki/api/v1/query_range")
    assert headers["Authorization"] == "Bearer tok-loki"


def test_unreachable_loki_is_an_error_quickly():
    started = time.monotonic()
    with pytest.raises(StepError, match="cannot connect") as err:
        run_logs(loki_target(f"http://127.0.0.1:{free_port()}"), service="api", pattern="x")
    assert not isinstance(err.value, StepTimeout)
    assert time.monotonic() - started < 1.0


def test_loki_that_never_answers_times_out_within_the_deadline(silent_server):
    started = time.monotonic()
    with pytest.raises(StepTimeout):
        run_logs(loki_target(silent_server.url), seconds=1.0, service="api", pattern="x")
    assert time.monotonic() - started < 1.5


def test_logs_plan_is_the_exact_query():
    target = ResolvedTarget("logs", "loki", "https://user:pw@logs.example:3100")
    plan = LOGS.plan({"service": "checkout", "pattern": 'say "hi" \\o/'}, target)
    assert 'query={service="checkout"} |= "say \\"hi\\" \\\\o/"' in plan
    assert "https://user:***@logs.example:3100" in plan and ":pw@" not in plan


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GET /users/123 took 45.6 ms", "GET /users/<n> took <n> ms"),
        ("req 550e8400-e29b-41d4-a716-446655440000 done", "req <id> done"),
        ("from 192.168.1.20:8080 and fe80:0:0:0:1ff:fe23:4567:890a", "from <ip> and <ip>"),
        ("trace=4bf92f3577b34da6a3ce929d0e0e4736 ptr 0xdeadBEEF", "trace=<id> ptr <id>"),
        ("at 2024-05-01T12:30:45.123Z   retry 3", "at <ts> retry <n>"),
        ("deadbeef is a word, cafe too", "deadbeef is a word, cafe too"),
    ],
)
def test_message_normalisation(line, expected):
    assert lconn.normalise(line) == expected


def test_baseline_is_the_window_median():
    # The summary's baseline is statistics.median over the window's points (not the mean,
    # which one spike would drag): a unit check of the helper the connector uses.
    s = pconn._series({"a": "b"}, 10.0, [1.0, 1.0, 1.0, 100.0], 5.0, "above")
    assert s["baseline"] == statistics.median([1.0, 1.0, 1.0, 100.0]) == 1.0
    assert s["change_pct"] == 900.0 and s["breach"] is True
