from collections.abc import Iterator

import pytest

from testing.fakes.slack_web import TOKEN, FakeSlackWeb, slack_web_server


@pytest.fixture
def slack(settings) -> Iterator[FakeSlackWeb]:
    """The fake Slack Web API, configured as the platform's Slack."""
    with slack_web_server() as fake:
        settings.SLACK_BOT_TOKEN = TOKEN
        settings.SLACK_API_URL = fake.api_url
        settings.SLACK_SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
        settings.SITE_URL = "https://ops.example.com"
        yield fake
