"""Shared helpers for the ingest tests: sources with secrets in the environment, posting."""

import json
from pathlib import Path
from typing import Any

import pytest

from incidents.ingest.auth import signature_for
from incidents.models import AlertSource

from .factories import AlertSourceFactory

PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "test-token-0123456789"
HMAC_KEY = "test-hmac-key-abcdef"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def corpus(kind: str, prefix: str) -> list[str]:
    return sorted(f"{kind}/{p.name}" for p in (PAYLOADS / kind).glob(f"{prefix}_*.json"))


@pytest.fixture
def secrets(monkeypatch, settings) -> None:
    monkeypatch.setenv("HOOK_TOKEN", TOKEN)
    monkeypatch.setenv("HOOK_HMAC", HMAC_KEY)
    # The eager sweep would act on its own clock mid-test; tests call the sweeper explicitly.
    settings.INGEST_EAGER_SWEEP_EVERY_SECONDS = 10**9
    from incidents.ingest import sweep

    monkeypatch.setattr(sweep, "_last_eager_sweep", float("inf"))
    from incidents.ingest.dispatch import DISPATCHER

    DISPATCHER.reset()


@pytest.fixture
def eager():
    """Run Celery inline for this test even when the session has a broker and a worker:
    these tests check the pipeline's logic; the broker path has its own tests."""
    from incident_response.celery import app

    saved = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def make_source(kind: str, slug: str | None = None, **fields: Any) -> AlertSource:
    return AlertSourceFactory(kind=kind, slug=slug or kind, **fields)


def post(
    client,
    slug: str,
    body: Any,
    *,
    token: str | None = TOKEN,
    content_type: str = "application/json",
    raw: bytes | None = None,
    headers: dict | None = None,
):
    data = raw if raw is not None else json.dumps(body).encode()
    extra = dict(headers or {})
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client.post(f"/hooks/{slug}/", data=data, content_type=content_type, **extra)


def post_signed(client, slug: str, body: Any, *, key: str = HMAC_KEY, signature: str | None = None):
    data = json.dumps(body).encode()
    sig = signature or signature_for(key.encode(), data)
    return client.post(
        f"/hooks/{slug}/", data=data, content_type="application/json", HTTP_X_SIGNATURE_256=sig
    )
