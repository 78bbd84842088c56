"""Demo data for the embedded default: real incidents through the real pipeline."""

from django.core.management.base import BaseCommand

from incidents.models import Incident
from incidents.services import incident_declare

DEMO = [
    (
        "SEV2",
        "timeline",
        "Timeline page slow: queries on the incidents_timelineevent table take seconds",
        "Responders report the incident page takes 10+ seconds to load. Queries on the "
        "incidents_timelineevent table are slow since the morning. No recent deployments.",
    ),
    (
        "SEV1",
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
    (
        "SEV2",
        "sessions",
        "Stale cache: users see other users' old cart contents",
        "After the pricing change, cached cart pages show stale prices; cache stampede when "
        "keys expire at the top of the hour.",
    ),
]


class Command(BaseCommand):
    help = "Declare a few demo incidents and run the whole pipeline on them (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="Declare them again.")

    def handle(self, *args, **opts):
        for severity, service, title, text in DEMO:
            if not opts["force"] and Incident.objects.filter(title=title).exists():
                self.stdout.write(f"  exists: {title}")
                continue
            incident = incident_declare(
                title=title, description=text, severity=severity, service=service
            )
            runbook = incident.runbooks.order_by("-version").first()
            state = runbook.status if runbook else "no runbook"
            self.stdout.write(f"  #{incident.pk} [{severity}] {title}: runbook {state}")
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
