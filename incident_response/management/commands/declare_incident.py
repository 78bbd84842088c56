from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from executor.report import format_report
from incidents.choices import Severity
from incidents.services import IncidentError, incident_declare
from web.selectors import pipeline_finished

from ._common import service_named_in


class Command(BaseCommand):
    help = "Declare an incident, run the whole pipeline, and print the results."

    def add_arguments(self, parser):
        parser.add_argument("text", help="What is broken, in plain words.")
        parser.add_argument("--severity", default=Severity.SEV3, choices=Severity.values)
        parser.add_argument(
            "--service",
            default="",
            help="The catalog service; default: the one catalog service the text names.",
        )
        parser.add_argument("--title", default="")
        parser.add_argument(
            "--timeout",
            type=float,
            default=300.0,
            help="With a worker: how long to wait for the checks to finish (seconds).",
        )

    def handle(self, *args, **opts):
        if not opts["service"]:
            opts["service"] = service_named_in(f"{opts['title']} {opts['text']}")
            if opts["service"]:
                self.stderr.write(f"Service: {opts['service']} (named in the text)")
        try:
            incident = incident_declare(
                description=opts["text"],
                title=opts["title"],
                severity=opts["severity"],
                service=opts["service"],
            )
        except IncidentError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Declared incident #{incident.pk}: {incident.title}")
        if not settings.CELERY_TASK_ALWAYS_EAGER:
            self.stderr.write("Waiting for the worker to generate the runbook and run the checks…")
        runbook, execution = pipeline_finished(incident=incident, timeout=opts["timeout"])
        if runbook is None:
            raise CommandError(f"No runbook for incident #{incident.pk} within {opts['timeout']}s")
        if runbook.status != "ready":
            raise CommandError(
                f"Runbook v{runbook.version} is {runbook.status}: {runbook.error or runbook.validation_errors}"
            )
        self.stdout.write(format_report(runbook, execution))
