from django.core.management.base import BaseCommand, CommandError

from executor.report import format_report
from incidents.models import Incident
from runbooks.services import RunbookBusy, runbook_request
from web.selectors import pipeline_finished


class Command(BaseCommand):
    help = "Generate a new runbook version for an incident, run its checks, print the results."

    def add_arguments(self, parser):
        parser.add_argument("incident", type=int, help="Incident id")
        parser.add_argument("--timeout", type=float, default=300.0)

    def handle(self, *args, **opts):
        try:
            incident = Incident.objects.get(pk=opts["incident"])
        except Incident.DoesNotExist as exc:
            raise CommandError(f"No incident #{opts['incident']}") from exc
        try:
            runbook = runbook_request(incident=incident)
        except RunbookBusy as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Queued runbook v{runbook.version} for incident #{incident.pk}")
        runbook, execution = pipeline_finished(incident=incident, timeout=opts["timeout"])
        if runbook is None or runbook.status != "ready":
            status = runbook.status if runbook else "missing"
            raise CommandError(f"Runbook is {status}: {runbook.error if runbook else ''}")
        self.stdout.write(format_report(runbook, execution))
