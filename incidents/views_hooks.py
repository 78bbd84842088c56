"""The alert webhook endpoint. Thin: check the request, call alert_ingest, answer JSON.

Every refusal is a 4xx with a JSON body that says what is wrong, and stores nothing.
"""

import logging

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .choices import CHANGE_SOURCE_KINDS, AlertSourceKind
from .ingest.auth import AuthError, authenticate, body_routing_key
from .ingest.base import PayloadError
from .ingest.changes import change_ingest
from .ingest.decode import DecodeError, decode_json, read_body
from .ingest.selectors import hook_source
from .ingest.store import alert_ingest

logger = logging.getLogger(__name__)


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"status": "error", "error": code, "message": message}, status=status)


@csrf_exempt
def alert_hook(request: HttpRequest, slug: str) -> JsonResponse:
    if request.method != "POST":
        response = _error(405, "method_not_allowed", "POST a JSON payload to this URL.")
        response["Allow"] = "POST"
        return response
    source = hook_source(slug=slug)
    if source is None:
        return _error(404, "unknown_source", f"No enabled alert source is called {slug!r}.")
    content_type = (request.content_type or "").lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        return _error(415, "unsupported_media_type", "Send the payload as application/json.")
    limit = settings.INGEST_MAX_BODY_BYTES
    body = read_body(request, limit)
    if body is None:
        response = _error(413, "payload_too_large", f"The body is larger than {limit} bytes.")
        # The rest of the body is left unread, so this connection cannot carry another
        # request: say so, or the sender's next delivery on it fails. wsgiref (runserver)
        # refuses hop-by-hop headers from the app; it drains the body itself instead.
        if not request.META.get("SERVER_SOFTWARE", "").startswith("WSGIServer/"):
            response["Connection"] = "close"
        return response

    payload = None
    parse_error = ""
    try:
        payload = decode_json(body)
    except DecodeError as exc:
        parse_error = str(exc)

    try:
        routing_key = body_routing_key(source, request.headers, payload)
        authenticate(source, request.headers, body, routing_key=routing_key)
    except AuthError as exc:
        return _error(401, "unauthorized", str(exc))
    if parse_error:
        return _error(400, "invalid_json", parse_error)

    if source.kind in CHANGE_SOURCE_KINDS:
        return _change_hook(source, payload, request)
    try:
        result = alert_ingest(source=source, payload=payload)
    except PayloadError as exc:
        if source.kind == AlertSourceKind.PAGERDUTY:
            return JsonResponse(
                {
                    "status": "invalid event",
                    "message": "Event object is invalid",
                    "errors": [str(exc)],
                },
                status=400,
            )
        return _error(422, "invalid_payload", f"Not a valid {source.kind} payload: {exc}")

    if source.kind == AlertSourceKind.PAGERDUTY:
        # Answer like PagerDuty's Events API v2 does.
        return JsonResponse(
            {"status": "success", "message": "Event processed", **result.answer}, status=202
        )
    return JsonResponse(
        {
            "status": "accepted",
            "received": result.received,
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "ignored": result.ignored,
            **result.answer,
        },
        status=202,
    )


def _change_hook(source, payload, request: HttpRequest) -> JsonResponse:
    """A change source's delivery: record its ChangeEvents, or refuse it and store nothing."""
    try:
        result = change_ingest(source=source, payload=payload, headers=request.headers)
    except PayloadError as exc:
        return _error(422, "invalid_payload", f"Not a valid {source.kind} payload: {exc}")
    return JsonResponse(
        {
            "status": "accepted",
            "received": result.received,
            "ignored": 0 if result.received else 1,
            "changes": result.ids,
        },
        status=202,
    )
