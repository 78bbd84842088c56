"""Logging filters named in settings.LOGGING."""

import logging

from celery import current_app


class EagerTaskChatter(logging.Filter):
    """Drops Celery's "Task … succeeded in 0.1s" lines of a task run eagerly: that task
    ran inside whatever process queued it (a management command, a request), where the
    line is chatter in that output, not a worker's log. A worker's lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or not current_app.conf.task_always_eager
