"""alert.notify: the timeline, and Slack through a local server that answers like Slack.

The server checks what Slack checks (method, path, content type, token, JSON shape)
and answers with Slack's documented responses: an incoming webhook says `ok` or an
error word (`no_service`, `invalid_payload`) with a 4xx; the Web API answers 200
with `{"ok": false, "error": ...}`; both send 429 with Retry-After when rate limited.
"""

import json
import time
from collections.abc import Iterator

import pytest

from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import ResolvedTarget
from testing.fakes.slack import TOKEN, WEBHOOK_PATH, FakeSlack, slack_server
from testing.services import free_port

SPEC = REGISTRY["alert.notify"]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with slack_server() as fake:
        yield fake


@pytest.fixture
def webhook(slack: FakeSlack) -> ResolvedTarget:
    return ResolvedTarget("slack", "slack", slack.base + WEBHOOK_PATH)


@pytest.fixture
def bot(slack: FakeSlack, monkeypatch) -> ResolvedTarget:
    monkeypatch.setenv("IR_TEST_SLACK_TOKEN", TOKEN)
    return ResolvedTarget(
        "slack-bot", "slack", slack.base + "/api", secret_env="IR_TEST_SLACK_TOKEN"
    )


def notify(params: dict, target: ResolvedTarget, seconds: float = 5.0):
    assert SPEC.validate_params(params) == []
    return SPEC.run(params, target, time.monotonic() + seconds)


def shown(result) -> str:
    return result.summary + result.text + json.dumps(result.data)


def test_timeline_target_records_without_network():
    target = ResolvedTarget("timeline", "timeline", "")
    result = notify({"message": "Rolled back the deploy"}, target)
    assert result.outcome == "ok"
    assert result.summary == "Recorded on the incident timeline: Rolled back the deploy"
    assert result.data["via"] == "timeline"
    assert SPEC.plan({"message": "x"}, target) == "Would record on the incident timeline: x"


def test_webhook_posts_escaped_text_and_blocks(slack, webhook):
    result = notify({"message": "<!channel> db & cache > 90%"}, webhook)
    assert result.outcome == "ok"
    assert result.data["via"] == "webhook" and result.data["answer"] == "ok"
    [req] = slack.received
    assert req["path"] == WEBHOOK_PATH and req["ctype"].startswith("application/json")
    escaped = "&lt;!channel&gt; db &amp; cache &gt; 90%"
    assert req["body"]["text"] == escaped
    assert req["body"]["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": escaped}}
    ]
    assert "s3cr3tw3bh00k" not in shown(result)
    assert "s3cr3tw3bh00k" not in SPEC.plan({"message": "x"}, webhook)


def test_webhook_rate_limit_within_the_deadline_is_waited_out(slack, webhook):
    slack.script = [("rate", 1)]
    result = notify({"message": "hello"}, webhook, seconds=5)
    assert result.outcome == "ok"
    assert result.data["attempts"] == 2
    assert len(slack.received) == 2
    assert slack.times[1] - slack.times[0] >= 1.0  # Retry-After was honoured


def test_webhook_rate_limit_beyond_the_deadline_is_an_error(slack, webhook):
    slack.script = [("rate", 30)]
    started = time.monotonic()
    with pytest.raises(StepError, match="rate limited") as info:
        notify({"message": "hello"}, webhook, seconds=3)
    assert time.monotonic() - started < 2.0
    assert len(slack.received) == 1
    assert "s3cr3tw3bh00k" not in str(info.value)


def test_webhook_errors_are_step_errors_without_the_url(slack, webhook):
    slack.script = [("no_service",)]
    with pytest.raises(StepError, match="404: no_service") as info:
        notify({"message": "hello"}, webhook)
    assert "s3cr3tw3bh00k" not in str(info.value)


def test_bot_token_posts_with_chat_post_message(slack, bot):
    result = notify({"message": "Failover done", "channel": "#incidents"}, bot)
    assert result.outcome == "ok"
    assert result.data["ts"] == "1700000000.000100"
    assert result.data["channel"] == "C0123456789"
    [req] = slack.received
    assert req["path"] == "/api/chat.postMessage"
    assert req["auth"] == f"Bearer {TOKEN}"
    assert req["ctype"] == "application/json; charset=utf-8"
    assert req["body"]["channel"] == "#incidents"
    assert req["body"]["text"] == "Failover done"
    assert TOKEN not in shown(result)
    assert "#incidents" in SPEC.plan({"message": "x", "channel": "#incidents"}, bot)


def test_bot_ok_false_is_an_error(slack, bot):
    slack.script = [("invalid_auth",)]
    with pytest.raises(StepError, match="invalid_auth") as info:
        notify({"message": "hello", "channel": "#incidents"}, bot)
    assert TOKEN not in str(info.value)


def test_bot_rate_limit_is_honoured(slack, bot):
    slack.script = [("rate", 1)]
    result = notify({"message": "hello", "channel": "ops"}, bot, seconds=5)
    assert result.data["attempts"] == 2
    assert slack.times[1] - slack.times[0] >= 1.0


def test_bot_needs_a_channel(slack, bot):
    with pytest.raises(StepBlocked, match="channel"):
        notify({"message": "hello"}, bot)
    assert slack.received == []


def test_unreachable_slack_is_an_error_and_passed_deadline_a_timeout(webhook):
    down = ResolvedTarget("slack", "slack", f"http://127.0.0.1:{free_port()}{WEBHOOK_PATH}")
    with pytest.raises(StepError) as info:
        notify({"message": "hello"}, down)
    assert not isinstance(info.value, StepTimeout)
    with pytest.raises(StepTimeout):
        SPEC.run({"message": "hello"}, webhook, time.monotonic() - 1)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"message": ""},
        {"message": "x" * 2001},
        {"message": "x", "channel": "#ops\n"},
        {"message": "x", "channel": "#Ops Room"},
        {"message": "x", "extra": 1},
    ],
)
def test_bad_params_are_refused(params):
    assert SPEC.validate_params(params) != []
