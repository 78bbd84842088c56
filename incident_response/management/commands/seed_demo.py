"""Demo data for the embedded default: the whole story through the real pipeline.

A catalog service backed by the app's own database and health URL (real targets
on the embedded default), two demo users (a responder and an approver, so four
eyes can be seen), an incident whose destructive action (VACUUM of the app's own
SQLite file) waits for approval, an incident an
alert opened, and a resolved one. Incidents of services without targets get no
borrowed checks: their steps say plainly that nothing is configured for them.
"""

import secrets
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import connection
from django.utils import timezone

from executor.choices import ActionStatus
from executor.models import ActionRequest, Service, Target
from executor.services.approvals import action_request_reask
from incidents.choices import AlertSourceKind, IncidentStatus
from incidents.ingest.outbox import outbox_process
from incidents.ingest.store import alert_ingest
from incidents.ingest.sweep import ingest_sweep
from incidents.models import AlertSource, Incident
from incidents.services import incident_declare, incident_transition

RESPONDER, APPROVER = "alice", "bob"
APPROVERS_MIGRATION = "executor.migrations.0003_approvers_group"
RESPONDERS_MIGRATION = "executor.migrations.0010_responders_group"
REVIEWERS_MIGRATION = "learning.migrations.0002_postmortem_publish_permission"
# The incident tool itself is the demo's service: its own database and /healthz.
DEMO_SERVICES = {"timeline": ("app-db", "app"), "web": ("app",)}

# (severity, service, title, text); the first one's VACUUM (destructive) and ANALYZE wait
# for approval.
DEMO = [
    (
        "SEV1",
        "timeline",
        "Timeline page slow: queries on the incidents_timelineevent table take seconds",
        "Responders report the incident page takes 10+ seconds to load. Queries on the "
        "incidents_timelineevent table are slow since the morning. No recent deployments.",
    ),
    (
        "SEV2",
        "web",
        "Health check failing on the web app",
        "The load balancer reports the health check failing for the web app; users see 502s.",
    ),
    (
        "SEV3",
        "checkout",
        "Error rate spike after deploy of checkout",
        "5xx rate on checkout jumped from 0.1% to 4% right after this afternoon's deploy.",
    ),
]
RESOLVED = (
    "SEV4",
    "web",
    "Login emails delayed by 20 minutes",
    "Password reset and login emails arrived 20 minutes late; the mail queue drained by itself.",
)
ALERT = {
    "title": "Incident page p95 latency above 2 s",
    "description": "Synthetic probe: the incident page answered in 2.4 s (p95, 10 min).",
    "service": "web",
    "severity": "warning",
    "dedup_key": "demo-web-latency",
}


def demo_password() -> str:
    """The demo users' password, kept in DATA_DIR so every run prints the same one."""
    path = Path(settings.DATA_DIR) / "demo-password.txt"
    if not path.exists() or not path.read_text().strip():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    return path.read_text().strip()


class Command(BaseCommand):
    help = (
        "Demo data through the real pipeline (idempotent): a catalog service on the app's own "
        "database and health URL, a responder and an approver, an action awaiting approval, "
        "an incident opened by an alert, and a resolved one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Declare the incidents again.")

    def handle(self, *args, **opts):
        self._catalog()
        responder, approver = self._users()
        for severity, service, title, text in DEMO:
            self._declare(severity, service, title, text, responder, opts["force"])
        self._resolved(responder)
        self._alert()
        self._refresh_expired(responder)
        self.stdout.write(
            f"  demo users: {RESPONDER} (responder), {APPROVER} (approver and postmortem "
            "reviewer, staff); "
            f"password: {demo_password()}"
        )
        self.stdout.write(self.style.SUCCESS("Demo data ready."))

    def _catalog(self) -> None:
        """Catalog rows for the app's own health URL and, on SQLite, its own database."""
        if not settings.EXECUTOR_DEMO_TARGETS:
            return
        site = settings.SITE_URL.rstrip("/")
        rows = {"app": ("http", site + "/healthz")}
        db = connection.settings_dict
        if db["ENGINE"].endswith("sqlite3"):
            rows["app-db"] = ("sqlite", f"sqlite:///{db['NAME']}")
        for name, (kind, base) in rows.items():
            Target.objects.update_or_create(name=name, defaults={"kind": kind, "base": base})
        for service, names in DEMO_SERVICES.items():
            row, _ = Service.objects.get_or_create(
                name=service, defaults={"description": "The incident tool itself (demo)."}
            )
            row.targets.add(*Target.objects.filter(name__in=names))

    def _group(self, migration_name: str) -> Group:
        """The group a data migration creates; made again (same permissions) if it was removed."""
        from django.apps import apps

        migration = import_module(migration_name)
        if not Group.objects.filter(name=migration.GROUP).exists():
            migration.create_group(apps, None)
        return Group.objects.get(name=migration.GROUP)

    def _users(self):
        User = get_user_model()
        password = demo_password()
        # alice acts on incidents and edits postmortems; bob approves actions and
        # publishes postmortems (staff, for the admin's approval queue).
        groups = {
            RESPONDER: [self._group(RESPONDERS_MIGRATION)],
            APPROVER: [self._group(APPROVERS_MIGRATION), self._group(REVIEWERS_MIGRATION)],
        }
        users = []
        for name, staff in ((RESPONDER, False), (APPROVER, True)):
            user, created = User.objects.get_or_create(
                username=name, defaults={"email": f"{name}@example.com", "is_staff": staff}
            )
            if created or not user.check_password(password):
                user.set_password(password)
                user.save()
            user.groups.add(*groups[name])
            users.append(user)
        return users

    def _declare(self, severity, service, title, text, actor, force) -> Incident | None:
        if not force and Incident.objects.filter(title=title).exists():
            self.stdout.write(f"  exists: {title}")
            return None
        incident = incident_declare(
            title=title, description=text, severity=severity, service=service, actor=actor
        )
        runbook = incident.runbooks.order_by("-version").first()
        state = runbook.status if runbook else "no runbook"
        waiting = incident.action_requests.filter(status=ActionStatus.AWAITING_APPROVAL).count()
        note = f", {waiting} awaiting approval" if waiting else ""
        self.stdout.write(f"  #{incident.pk} [{severity}] {title}: runbook {state}{note}")
        return incident

    def _resolved(self, actor) -> None:
        incident = self._declare(*RESOLVED, actor, force=False)
        if incident is not None:
            incident_transition(incident=incident, to_status=IncidentStatus.RESOLVED, actor=actor)

    def _alert(self) -> None:
        """An incident opened by an alert, through the generic webhook's own ingest path."""
        source, _ = AlertSource.objects.get_or_create(
            slug="demo-probe",
            defaults={
                "name": "Demo synthetic probe",
                "kind": AlertSourceKind.GENERIC,
                "secret_env": "DEMO_PROBE_TOKEN",
                "default_service": "web",
            },
        )
        if Incident.objects.filter(title=ALERT["title"]).exists():
            self.stdout.write(f"  exists: {ALERT['title']}")
            return
        result = alert_ingest(source=source, payload=dict(ALERT))
        if result.outbox_id is not None:
            outbox_process(outbox_id=result.outbox_id)
        # The runbook is asked for once the alert has been quiet for the debounce window.
        ingest_sweep(now=timezone.now() + timezone.timedelta(minutes=10))
        incident = Incident.objects.filter(title=ALERT["title"]).first()
        where = f"#{incident.pk}" if incident else "(not grouped yet)"
        self.stdout.write(f"  {where} opened by an alert: {ALERT['title']}")

    def _refresh_expired(self, responder) -> None:
        """A demo request that expired since the last run is asked for again."""
        expired = ActionRequest.objects.filter(
            incident__title=DEMO[0][2], status=ActionStatus.EXPIRED
        )
        for request in expired:
            action_request_reask(action_request=request, actor=responder)
            self.stdout.write(f"  asked again for approval: {request.step_id}")
