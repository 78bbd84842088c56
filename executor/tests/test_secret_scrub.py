"""An upstream that echoes our request (URL, headers) in its answer hands back no secret:
not in a step's result, not on the timeline, not on the incident page."""

import base64
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model

from executor.models import CheckRun
from executor.registry import REGISTRY
from executor.results import StepError
from executor.services import execution_run
from executor.targets import ResolvedTarget
from runbooks.tests.factories import ready_runbook, sample_document
from testing.servers import handler_server

USER, PASSWORD = "echo-user", "p@ss w0rd/x"
QUERY_TOKEN = "q-s3cret+value/1"
BEARER = "bearer-tok-987654"
SLACK_PATH = ("T0AAAA1111", "B0BBBB2222", "XyZsEcReTtOkEn123456")


def secret_forms() -> list[str]:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    forms = [USER, PASSWORD, quote(PASSWORD, safe=""), QUERY_TOKEN, quote(QUERY_TOKEN, safe="")]
    return [*forms, basic, BEARER, *SLACK_PATH]


def assert_clean(text: str) -> None:
    for form in secret_forms():
        assert form not in text, (form, text[:2000])


class EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with the request itself: line and headers, like a debug page."""

    def log_message(self, *args) -> None:
        pass

    def _echo(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = (f"{self.command} {self.path}\n{self.headers}").encode()
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _echo


@pytest.fixture(params=[500, 200])
def echo(request) -> Iterator[str]:
    with handler_server(EchoHandler, status=request.param) as (_, base):
        yield base


def http_url(base: str) -> str:
    host = base.removeprefix("http://")
    auth = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}"
    return f"http://{auth}@{host}/healthz?token={quote(QUERY_TOKEN, safe='')}&v=1"


def test_scrub_takes_out_every_form_of_every_secret(monkeypatch):
    monkeypatch.setenv("IR_TEST_ECHO_TOKEN", BEARER)
    target = ResolvedTarget("echo", "http", http_url("http://h:1"), secret_env="IR_TEST_ECHO_TOKEN")
    forms = [f for f in secret_forms() if f not in SLACK_PATH]
    text = " ".join(forms) + " " + target.url + " " + json.dumps(forms)
    assert_clean(target.scrub(text))
    slack = ResolvedTarget(
        "chat", "slack", "https://hooks.slack.com/services/" + "/".join(SLACK_PATH)
    )
    assert_clean(slack.scrub("POST /services/" + "/".join(SLACK_PATH) + " " + quote(slack.url)))
    hidden = ResolvedTarget(
        "hook", "http", "https://h.example/ab12/cd34", options={"secret_in_path": True}
    )
    assert "ab12" not in hidden.scrub("POST /ab12/cd34") and "cd34" not in hidden.display_url
    plain = ResolvedTarget("app", "http", "http://127.0.0.1:8000/healthz")
    assert plain.scrub("GET /healthz 200 in 8000 ms") == "GET /healthz 200 in 8000 ms"


def test_an_echoing_health_endpoint_leaks_nothing(echo, monkeypatch):
    monkeypatch.setenv("IR_TEST_ECHO_TOKEN", BEARER)
    target = ResolvedTarget("echo", "http", http_url(echo), secret_env="IR_TEST_ECHO_TOKEN")
    from executor.engine import PreparedStep, run_step

    step = PreparedStep(
        "check_echo", "http.health_check", {}, 0, REGISTRY["http.health_check"], target
    )
    outcome = run_step(step, timeout=5)
    assert outcome.data["status"] in (200, 500)
    assert "Authorization" in outcome.data["body_excerpt"]  # the echo did come back
    assert_clean(outcome.summary + outcome.output + json.dumps(outcome.data))


def test_an_echoing_slack_webhook_leaks_nothing(echo):
    target = ResolvedTarget("chat", "slack", echo + "/services/" + "/".join(SLACK_PATH))
    spec = REGISTRY["alert.notify"]
    try:
        result = spec.run({"message": "hello"}, target, time.monotonic() + 5)
    except StepError as exc:
        assert_clean(str(exc))
    else:
        assert_clean(result.summary + result.text + json.dumps(result.data))


@pytest.mark.django_db
def test_checks_against_an_echo_keep_no_secret_on_the_timeline_or_the_page(
    echo, settings, monkeypatch, client
):
    monkeypatch.setenv("IR_TEST_ECHO_TOKEN", BEARER)
    settings.EXECUTOR_TARGETS = {
        "echo": {"kind": "http", "url": http_url(echo), "secret_env": "IR_TEST_ECHO_TOKEN"}
    }
    doc = sample_document()
    doc["checks"] = [
        {"id": "check_echo", "action": "http.health_check", "params": {"target": "echo"}}
    ]
    runbook = ready_runbook(doc)
    execution_run(runbook_id=runbook.pk)
    run = CheckRun.objects.get(execution__runbook=runbook)
    assert "Authorization" in json.dumps(run.data)  # the echo reached the record
    assert_clean(json.dumps([run.summary, run.output, run.data], default=str))
    timeline = list(runbook.incident.timeline.values_list("message", "payload"))
    assert_clean(json.dumps(timeline, default=str))
    user = get_user_model().objects.create_superuser("ops", "ops@example.org", "pw")
    client.force_login(user)
    page = client.get(f"/incidents/{runbook.incident.pk}/")
    assert page.status_code == 200
    assert_clean(page.content.decode())
