"""The approval queue from a shell: list, approve, reject, ask again. Same services, same rules
(executor.policy): only an active staff approver decides, as in the admin.

manage.py approvals list [--all]
manage.py approvals approve ID --as USER [--reason TEXT]
manage.py approvals reject ID --as USER --reason TEXT
manage.py approvals reask ID --as USER [--reason TEXT]
"""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from executor import policy, selectors, services
from executor.choices import ActionStatus
from executor.models import ActionRequest


class Command(BaseCommand):
    help = "List pending action requests and decide on them, with the rules of the admin queue."

    def add_arguments(self, parser) -> None:
        verbs = parser.add_subparsers(dest="verb", required=True)
        listing = verbs.add_parser("list", help="requests waiting for a decision")
        listing.add_argument("--all", action="store_true", help="every status, not only pending")
        helps = {
            "approve": "approve a pending request (an approver who did not ask for it)",
            "reject": "reject a pending request, with a reason",
            "reask": "ask again for an expired request: a fresh dry-run, the clock restarts",
        }
        for verb, reason_required in (("approve", False), ("reject", True), ("reask", False)):
            sub = verbs.add_parser(verb, help=helps[verb], description=helps[verb].capitalize())
            sub.add_argument("id", type=int, help="action request id")
            sub.add_argument("--as", dest="as_user", required=True, help="username deciding")
            sub.add_argument("--reason", default="", required=reason_required)

    def handle(self, *args, **options) -> None:
        verb = options["verb"]
        if verb == "list":
            self._list(all_statuses=options["all"])
            return
        user = self._user(options["as_user"])
        try:
            request = ActionRequest.objects.get(pk=options["id"])
        except ActionRequest.DoesNotExist as exc:
            raise CommandError(f"No action request #{options['id']}.") from exc
        try:
            if verb == "approve":
                request = services.action_request_approve(
                    action_request=request, approver=user, reason=options["reason"]
                )
            elif verb == "reject":
                request = services.action_request_reject(
                    action_request=request, approver=user, reason=options["reason"]
                )
            else:
                request = services.action_request_reask(
                    action_request=request, actor=user, reason=options["reason"]
                )
        except services.ExecutorError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"#{request.pk} {request.step_id} ({request.action}): "
                f"{request.get_status_display().lower()}"
            )
        )
        if request.status in (ActionStatus.SUCCEEDED, ActionStatus.FAILED):
            self.stdout.write(request.error or (request.result or {}).get("summary", ""))

    def _user(self, username: str):
        User = get_user_model()
        try:
            return User.objects.get(**{User.USERNAME_FIELD: username}, is_active=True)
        except User.DoesNotExist as exc:
            raise CommandError(f"No active user {username!r}.") from exc

    def _list(self, *, all_statuses: bool) -> None:
        rows = selectors.approval_queue(
            status=None if all_statuses else ActionStatus.AWAITING_APPROVAL
        )
        now = timezone.now()
        count = 0
        for r in rows:
            count += 1
            asked = r.requester_label
            waited = timesince(r.requested_at, now) if r.requested_at else "-"
            if r.status == ActionStatus.AWAITING_APPROVAL and r.expires_at:
                expires = timeuntil(r.expires_at, now) if r.expires_at > now else "expired"
            else:
                expires = "-"
            needed = policy.approvals_required(r)
            self.stdout.write(
                f"#{r.pk} [{r.incident.severity}] incident #{r.incident_id} {r.incident.title}\n"
                f"    {r.step_id}: {r.action} → {r.target or '(none)'}  params={r.params}\n"
                f"    status={r.status}  approvals={r.approvals_given}/{needed}  asked by {asked}, "
                f"waited {waited}, expires in {expires}\n"
                f"    why: {r.approval_reason or '-'}\n"
                + "".join(f"    | {line}\n" for line in (r.plan or "(no plan)").splitlines())
            )
        if not count:
            self.stdout.write(
                "No action request waits for a decision."
                if not all_statuses
                else "No action requests."
            )
