from django.core.management.base import BaseCommand

from learning.reports import post_to_slack, weekly_report


class Command(BaseCommand):
    help = "Print the weekly stability report of the last full week (and post it with --slack)."

    def add_arguments(self, parser) -> None:  # noqa: ANN001
        parser.add_argument("--slack", action="store_true", help="also post it to Slack")

    def handle(self, *args, **options) -> None:
        text = weekly_report().as_text()
        self.stdout.write(text)
        if options["slack"]:
            posted = post_to_slack(text)
            self.stdout.write(
                "Posted to Slack." if posted else "Slack is not configured or failed."
            )
