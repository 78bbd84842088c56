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
    return {
        "postmortems": len(services.postmortem_reminders()),
        "follow_ups": len(services.follow_up_reminders()),
    }


@shared_task(name="learning.weekly_report")
def weekly_report_task() -> bool:
    return reports.post_weekly_report()
