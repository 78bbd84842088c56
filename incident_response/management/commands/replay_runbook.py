from django.core.management.base import BaseCommand, CommandError

from executor.report import diff_outcomes, format_report
from executor.services import execution_run
from runbooks.models import Runbook


class Command(BaseCommand):
    help = (
        "Re-validate a stored runbook and re-run its checks against the current targets, "
        "without calling Claude; print the results and what changed since the first run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "runbook", help="Runbook id, or its artifact key (runbooks/<incident>/<v>-<sha>.json)"
        )

    def handle(self, *args, **opts):
        ref = opts["runbook"].strip()
        query = Runbook.objects.select_related("incident")
        runbook = (
            query.filter(pk=int(ref)).first()
            if ref.isdigit()
            else query.filter(artifact_key=ref).first()
        )
        if runbook is None:
            raise CommandError(f"No stored runbook {ref!r}")
        first = runbook.executions.order_by("started_at", "id").first()
        execution = execution_run(runbook_id=runbook.pk, trigger="replay")
        self.stdout.write(format_report(runbook, execution))
        self.stdout.write("Changes since the first run:")
        if execution.error:
            raise CommandError(f"Replay refused: {execution.error}")
        for line in diff_outcomes(first, execution):
            self.stdout.write(line)
