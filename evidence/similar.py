"""Similar past incidents, with what resolved them.

On PostgreSQL: full-text search (`websearch_to_tsquery` over title, service,
description and alert titles) ranked together with `pg_trgm` similarity of the title,
so "checkout p99 latency" finds "Checkout latency above SLO" by words and by spelling.
The embedded SQLite default has neither: it ranks by word overlap (Jaccard over
normalised words) in Python over the latest resolved incidents.
"""

import re
from typing import Any

from django.db import DatabaseError, connection, transaction

from incidents.choices import IncidentStatus, TimelineKind
from incidents.models import Incident

from .scrub import scrub_text

CANDIDATES = 500
MIN_SCORE = 0.12
RESOLUTION_KINDS = [TimelineKind.ACTION_STATUS, TimelineKind.STATUS_UPDATE, TimelineKind.NOTE]
_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = {"the", "and", "for", "since", "after", "with", "from", "above", "below", "than"}

_PG_SQL = """
SELECT i.id,
       ts_rank(to_tsvector('simple', i.title || ' ' || i.service || ' ' || i.description),
               websearch_to_tsquery('simple', %(q)s))
       + similarity(i.title, %(title)s) AS score
FROM incidents_incident i
WHERE i.id <> %(id)s AND i.status = %(resolved)s
  AND (to_tsvector('simple', i.title || ' ' || i.service || ' ' || i.description)
         @@ websearch_to_tsquery('simple', %(q)s)
       OR similarity(i.title, %(title)s) > 0.2)
ORDER BY score DESC, i.id DESC
LIMIT %(limit)s
"""


def words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _pg(incident_id: int, text: str, limit: int) -> list[tuple[int, float]] | None:
    query = " OR ".join(sorted(words(text))[:30])
    if not query:
        return []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                _PG_SQL,
                {
                    "q": query,
                    "title": text[:200],
                    "id": incident_id,
                    "resolved": IncidentStatus.RESOLVED,
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
    scored = []
    rows = (
        Incident.objects.filter(status=IncidentStatus.RESOLVED)
        .exclude(pk=incident_id)
        .order_by("-detected_at")
        .values_list("pk", "title", "service", "description")[:CANDIDATES]
    )
    for pk, title, other_service, description in rows:
        theirs = words(f"{title} {other_service} {description}")
        score = len(wanted & theirs) / len(wanted | theirs) if theirs else 0.0
        if service and other_service == service:
            score += 0.1
        if score >= MIN_SCORE:
            scored.append((pk, score))
    scored.sort(key=lambda x: (-x[1], -x[0]))
    return scored[:limit]


def similar_incidents(*, incident_id: int, text: str, service: str, limit: int = 3) -> list[dict]:
    ranked = None
    if connection.vendor == "postgresql":
        ranked = _pg(incident_id, text, limit)
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
        resolution = list(
            incident.timeline.filter(kind__in=RESOLUTION_KINDS)
            .order_by("-created_at")
            .values_list("message", flat=True)[:3]
        )
        out.append(
            {
                "id": pk,
                "title": scrub_text(incident.title),
                "service": incident.service,
                "status": incident.status,
                "score": round(score, 3),
                "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
                "resolution": [scrub_text(m)[:300] for m in resolution],
            }
        )
    return out
