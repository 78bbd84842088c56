"""The Slack Web API client and request verifier, built from settings.

Without SLACK_BOT_TOKEN there is no client, and without SLACK_SIGNING_SECRET no
verifier: the incident then lives on its timeline alone.
"""

from django.conf import settings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier


def slack_enabled() -> bool:
    return bool(settings.SLACK_BOT_TOKEN)


def slack_client() -> WebClient | None:
    if not settings.SLACK_BOT_TOKEN:
        return None
    base = settings.SLACK_API_URL.rstrip("/") + "/"
    return WebClient(
        token=settings.SLACK_BOT_TOKEN,
        base_url=base,
        timeout=settings.SLACK_TIMEOUT,
        # One wait for a 429's Retry-After; longer outages are the outbox's to retry.
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=1),
            RateLimitErrorRetryHandler(max_retry_count=1),
        ],
    )


def signature_verifier() -> SignatureVerifier | None:
    if not settings.SLACK_SIGNING_SECRET:
        return None
    return SignatureVerifier(settings.SLACK_SIGNING_SECRET)
