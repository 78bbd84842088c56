"""Deploys read from where the service runs (its Fly apps), recorded as ChangeEvents.

A webhook may never have told us about a deploy (no CI hook, a manual `fly deploy`);
the machines still say which image they run and since when. The installed readers
(`ServiceReaders.recent_deploys`, filled by the executor) list them; this records
each new image once, so the changes collector reads them beside the others. An image
already seen (deployed, or replaced by a deploy) is left alone: a machine restarted
later bumps its update time, which is not a new deploy. The limit: a manual move back
to an image seen before is not recorded (our own rollbacks are, by the executor).
"""

from incidents.choices import ChangeKind, ChangeStatus
from incidents.ingest.changes import ParsedChange, change_record
from incidents.models import ChangeEvent

from .scrub import scrub_text

ORIGIN = "fly"


def record_deploys(deploys: list[dict]) -> list[int]:
    """Store the deploys not seen before; the ids of the new ChangeEvents."""
    # Every image a service's apps were seen running, as a deploy or as what one replaced.
    seen: set[tuple[str, str]] = set()
    rows = ChangeEvent.objects.filter(
        origin=ORIGIN, service__in={d["service"] for d in deploys}
    ).values_list("service", "version", "previous_version")
    for service, version, previous in rows:
        seen |= {(service, version), (service, previous)}
    created = []
    for deploy in deploys:
        if (deploy["service"], scrub_text(deploy["version"])) in seen:
            continue
        event = change_record(
            origin=ORIGIN,
            change=ParsedChange(
                service=deploy["service"],
                kind=ChangeKind.DEPLOY,
                status=ChangeStatus.SUCCEEDED,
                external_id=deploy["external_id"],
                version=scrub_text(deploy["version"]),
                previous_version=scrub_text(deploy.get("previous_version") or ""),
                author="Fly Machines API",
                description=scrub_text(deploy.get("description") or "")[:500],
                started_at=deploy["started_at"],
                finished_at=deploy.get("finished_at"),
            ),
        )
        created.append(event.pk)
        seen |= {(event.service, event.version), (event.service, event.previous_version)}
    return created
