"""Thin Celery wrappers: send a war room's posts, sweep the outbox, nudge late updates."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from .cadence import nudge_overdue_updates
from .models import SlackRequest
from .outbox import DRAIN_ROOM_TASK, drain, sweep

REPLAY_WINDOW = timedelta(minutes=10)


@shared_task(name=DRAIN_ROOM_TASK, ignore_result=True)
def drain_room(room_id: int) -> int:
    return drain(room_id=room_id)


@shared_task(name="coordination.sweep_posts")
def sweep_posts() -> int:
    # Signatures older than Slack's five-minute window can never be replayed successfully.
    SlackRequest.objects.filter(received_at__lt=timezone.now() - REPLAY_WINDOW).delete()
    return sweep()


@shared_task(name="coordination.nudge_overdue")
def nudge_overdue() -> int:
    return nudge_overdue_updates()
