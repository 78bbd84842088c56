"""Thin Celery wrappers around the learning services."""

from celery import shared_task

from . import reports, services

DRAFT_POSTMORTEM = "learning.draft_postmortem"


@shared_task(
    name=DRAFT_POSTMORTEM, autoretry_for=(ConnectionError,), retry_backoff=True, max_retries=3
)
def draft_postmortem_task(incident_id: int) -> int:
    return services.postmortem_draft(incident_id=incident_id).pk


@shared_task(name="learning.remind")
def remind_task() -> dict[str, int]:
    """Postmortems overdue for review and overdue follow-ups: on the timeline, once each."""
    postmortems = services.postmortem_reminders()
    follow_ups = services.follow_up_reminders()
    if postmortems or follow_ups:
        reports.post_to_slack(services.reminder_text(postmortems, follow_ups))
    return {"postmortems": len(postmortems), "follow_ups": len(follow_ups)}


@shared_task(name="learning.weekly_report")
def weekly_report_task() -> bool:
    return reports.post_weekly_report()
