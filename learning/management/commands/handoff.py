from django.core.management.base import BaseCommand, CommandError

from learning.reports import handoff_report
from learning.services import LearningError, handoff_record, user_by_name


class Command(BaseCommand):
    help = "Print what the next on-call must know; with --to, record the handover."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--from", dest="from_user", default="", help="who hands over")
        parser.add_argument("--to", dest="to_user", default="", help="who takes over")
        parser.add_argument("--risks", default="", help="known risks, free text")

    def handle(self, *args, **options) -> None:
        report = handoff_report()
        self.stdout.write(report.as_text())
        if not options["to_user"]:
            return
        try:
            handoff = handoff_record(
                from_user=user_by_name(options["from_user"]) if options["from_user"] else None,
                to_user=user_by_name(options["to_user"]),
                known_risks=options["risks"],
                snapshot=report.as_json(),
            )
        except LearningError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Handed over to {handoff.to_user} at {handoff.created_at:%Y-%m-%d %H:%M}."
        )
