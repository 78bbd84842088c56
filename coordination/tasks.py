"""Thin Celery wrappers: send a war room's posts, sweep the outbox, nudge late updates."""

from celery import shared_task

from .cadence import nudge_overdue_updates
from .outbox import drain, sweep


@shared_task(name="coordination.drain_room", ignore_result=True)
def drain_room(room_id: int) -> int:
    return drain(room_id=room_id)


@shared_task(name="coordination.sweep_posts")
def sweep_posts() -> int:
    return sweep()


@shared_task(name="coordination.nudge_overdue")
def nudge_overdue() -> int:
    return nudge_overdue_updates()
