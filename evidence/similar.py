"""Similar past incidents, with what resolved them.

Searched over each resolved incident's title, service, description, its alerts' titles
and labels, and its outcome (the root cause, category and resolving actions its
published postmortem recorded: `Incident.outcome`).

On PostgreSQL: full-text search (`websearch_to_tsquery` over that text) ranked together
with `pg_trgm` similarity of the title, so "checkout p99 latency" finds "Checkout
latency above SLO" by words and by spelling; the latest CANDIDATES resolved incidents
are searched, which bounds the cost without an index. The embedded SQLite default has
neither: it ranks by word overlap (Jaccard over normalised words) in Python over the
same candidates.

What resolved them: the postmortem's outcome when one was published, else the
incident's last action, status update and note lines.
"""

import re
from contextlib import nullcontext
from typing import Any

from django.db import DatabaseError, connection, transaction

from incidents.choices import IncidentStatus, TimelineKind
from incidents.models import Alert, Incident

from .scrub import scrub_text

CANDIDATES = 500
MIN_SCORE = 0.12
SAME_SERVICE = 0.1
RESOLUTION_KINDS = [TimelineKind.ACTION_STATUS, TimelineKind.STATUS_UPDATE, TimelineKind.NOTE]
_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = {"the", "and", "for", "since", "after", "with", "from", "above", "below", "than"}

_PG_SQL = """
WITH candidates AS (
    SELECT i.id, i.title, i.service,
           to_tsvector('simple',
               i.title || ' ' || i.service || ' ' || i.description || ' '
               || coalesce(i.outcome ->> 'root_cause', '') || ' '
               || coalesce(i.outcome ->> 'category', '') || ' '
               || coalesce(i.outcome ->> 'actions', '') || ' '
               || coalesce((SELECT string_agg(a.title || ' ' || a.labels::text, ' ')
                            FROM incidents_alert a WHERE a.incident_id = i.id), '')
           ) AS document
    FROM incidents_incident i
    WHERE i.id <> %(id)s AND i.status = %(resolved)s
    ORDER BY i.detected_at DESC
    LIMIT %(candidates)s
)
SELECT c.id,
       ts_rank(c.document, q) + similarity(c.title, %(title)s)
       + CASE WHEN c.service = %(service)s AND %(service)s <> '' THEN %(same)s ELSE 0 END
       AS score
FROM candidates c, websearch_to_tsquery('simple', %(q)s) q
WHERE c.document @@ q OR similarity(c.title, %(title)s) > 0.2
ORDER BY score DESC, c.id DESC
LIMIT %(limit)s
"""


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _outcome_text(outcome: Any) -> str:
    if not isinstance(outcome, dict):
        return ""
    actions = outcome.get("actions") if isinstance(outcome.get("actions"), list) else []
    parts = [outcome.get("root_cause"), outcome.get("category"), *actions]
    return " ".join(str(p) for p in parts if p)


def _pg(
    incident_id: int, text: str, title: str, service: str, limit: int
) -> list[tuple[int, float]] | None:
    query = " OR ".join(sorted(words(text))[:30])
    if not query:
        return []
    # A savepoint only inside a transaction (so a missing pg_trgm does not break it);
    # on its own the statement needs none.
    guard = transaction.atomic() if connection.in_atomic_block else nullcontext()
    try:
        with guard, connection.cursor() as cursor:
            cursor.execute(
                _PG_SQL,
                {
                    "q": query,
                    "title": title[:200],
                    "service": service,
                    "same": SAME_SERVICE,
                    "id": incident_id,
                    "resolved": IncidentStatus.RESOLVED,
                    "candidates": CANDIDATES,
                    "limit": limit,
                },
            )
            return [(row[0], float(row[1])) for row in cursor.fetchall()]
    except DatabaseError:
        return None  # pg_trgm not installed: rank in Python instead


def _python(incident_id: int, text: str, service: str, limit: int) -> list[tuple[int, float]]:
    wanted = words(text)
    if not wanted:
        return []
    rows = list(
        Incident.objects.filter(status=IncidentStatus.RESOLVED)
        .exclude(pk=incident_id)
        .order_by("-detected_at")
        .values_list("pk", "title", "service", "description", "outcome")[:CANDIDATES]
    )
    alert_text: dict[int, list[str]] = {}
    for owner, title, labels in Alert.objects.filter(
        incident_id__in=[r[0] for r in rows]
    ).values_list("incident_id", "title", "labels"):
        alert_text.setdefault(owner, []).append(f"{title} {labels}")
    scored = []
    for pk, title, other_service, description, outcome in rows:
        document = " ".join(
            [title, other_service, description, _outcome_text(outcome), *alert_text.get(pk, [])]
        )
        theirs = words(document)
        score = len(wanted & theirs) / len(wanted | theirs) if theirs else 0.0
        if service and other_service == service:
            score += SAME_SERVICE
        if score >= MIN_SCORE:
            scored.append((pk, score))
    scored.sort(key=lambda x: (-x[1], -x[0]))
    return scored[:limit]


def _outcome(incident: Incident) -> dict | None:
    outcome = incident.outcome if isinstance(incident.outcome, dict) else {}
    if not outcome.get("root_cause") and not outcome.get("actions"):
        return None
    return {
        "root_cause": scrub_text(str(outcome.get("root_cause") or ""))[:600],
        "category": str(outcome.get("category") or "")[:64],
        "actions": [scrub_text(str(a))[:300] for a in outcome.get("actions") or []][:5],
        "source": str(outcome.get("source") or "")[:100],
    }


def similar_incidents(
    *, incident_id: int, text: str, service: str, title: str = "", limit: int = 3
) -> list[dict]:
    """Resolved incidents like this one, best first, each with what resolved it.

    `text` is what to match (title, service, description, alert titles and labels);
    `title` the incident's title for trigram similarity (the start of `text` if not given).
    """
    ranked = None
    if connection.vendor == "postgresql":
        ranked = _pg(incident_id, text, title or text, service, limit)
    if ranked is None:
        ranked = _python(incident_id, text, service, limit)
    if not ranked:
        return []
    found = Incident.objects.in_bulk([pk for pk, _ in ranked])
    out: list[dict[str, Any]] = []
    for pk, score in ranked:
        incident = found.get(pk)
        if incident is None:
            continue
        outcome = _outcome(incident)
        resolution = list(
            incident.timeline.filter(kind__in=RESOLUTION_KINDS)
            .order_by("-created_at")
            .values_list("message", flat=True)[:3]
        )
        if outcome:
            # The postmortem's word first: what it says resolved it.
            resolution = [*(f"Resolved by {a}" for a in outcome["actions"]), *resolution][:5]
        out.append(
            {
                "id": pk,
                "title": scrub_text(incident.title),
                "service": incident.service,
                "status": incident.status,
                "score": round(score, 3),
                "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
                "outcome": outcome,
                "resolution": [scrub_text(m)[:300] for m in resolution],
            }
        )
    return out
