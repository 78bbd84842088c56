"""Webhook authentication: a bearer token or an HMAC-SHA256 body signature.

The secret is read from the environment variable the source names, at request time,
so rotating it needs no database change. Comparisons are constant-time.
"""

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any

from incidents.choices import AlertAuthMode, AlertSourceKind
from incidents.models import ENV_NAME_RE, AlertSource

SIGNATURE_HEADERS = ("X-Signature-256", "X-Hub-Signature-256")


class AuthError(Exception):
    """Refused. The message is safe to send back: it never contains a secret."""


def source_secret(source: AlertSource) -> bytes:
    name = source.secret_env or ""
    value = os.environ.get(name, "") if ENV_NAME_RE.match(name) else ""
    if not value:
        raise AuthError("this source has no secret configured on the server")
    return value.encode()


def _equal(given: str | bytes, expected: bytes) -> bool:
    given_bytes = given.encode() if isinstance(given, str) else given
    return hmac.compare_digest(given_bytes, expected)


def signature_for(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def authenticate(
    source: AlertSource, headers: Mapping[str, str], body: bytes, *, routing_key: str = ""
) -> None:
    """Raise AuthError unless the request proves it knows the source's secret.

    PagerDuty Events v2 senders carry their integration key as `routing_key` in the
    body and send no header; the caller passes it when the header is absent.
    """
    secret = source_secret(source)
    # GitHub only ever signs (X-Hub-Signature-256): a token would never come.
    if source.auth_mode == AlertAuthMode.HMAC or source.kind == AlertSourceKind.GITHUB:
        given = next((headers.get(h) for h in SIGNATURE_HEADERS if headers.get(h)), "")
        if not given:
            raise AuthError(f"missing signature header {SIGNATURE_HEADERS[0]}: sha256=<hex>")
        if not given.startswith("sha256="):
            given = "sha256=" + given
        if not _equal(given.strip().lower(), signature_for(secret, body).encode()):
            raise AuthError("bad signature")
        return
    header = headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        if not _equal(token.strip(), secret):
            raise AuthError("bad token")
        return
    if source.kind == AlertSourceKind.PAGERDUTY and routing_key:
        if not _equal(routing_key, secret):
            raise AuthError("bad routing_key")
        return
    raise AuthError("missing Authorization: Bearer <token> header")


def needs_routing_key(source: AlertSource, headers: Mapping[str, str]) -> bool:
    """Whether auth must look inside the body (PagerDuty without an Authorization header)."""
    return (
        source.kind == AlertSourceKind.PAGERDUTY
        and source.auth_mode == AlertAuthMode.BEARER
        and not headers.get("Authorization")
    )


def body_routing_key(source: AlertSource, headers: Mapping[str, str], payload: Any) -> str:
    """The `routing_key` in a decoded PagerDuty body when auth needs it, else ""."""
    if not needs_routing_key(source, headers) or not isinstance(payload, dict):
        return ""
    value = payload.get("routing_key")
    return value if isinstance(value, str) else ""
