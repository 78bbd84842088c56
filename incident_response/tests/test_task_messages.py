"""Tasks sent by name, whose results nobody reads, subscribe to no result.

Celery's send_task subscribes the sender to the task's result channel unless told to
ignore the result: with the Redis backend, a pub/sub connection and a SUBSCRIBE (then an
UNSUBSCRIBE) per message, for a result the worker never stores.
"""

from unittest import mock

import pytest
from celery import current_app

from incident_response import pipeline
from incidents.ingest.queue import PROCESS_OUTBOX, enqueue


@pytest.fixture
def worker_mode():
    """Messages go to a broker (not run inline); none is actually published."""
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = False
    with mock.patch.object(current_app.amqp, "send_task_message") as published:
        yield published
    current_app.conf.task_always_eager = eager


def test_every_message_sent_by_name_asks_for_no_result(worker_mode):
    backend = type(current_app.backend)
    with (
        mock.patch.object(backend, "on_task_call") as subscribed,
        mock.patch.object(pipeline, "runbook_debounce", return_value=5.0),
    ):
        enqueue(PROCESS_OUTBOX, args=[1])
        pipeline.context_schedule(runbook_id=2)
        pipeline.runbook_schedule(incident_id=3, opened=False, first=True)
    sent = [c.args[1] for c in worker_mode.call_args_list]
    assert sent == [PROCESS_OUTBOX, pipeline.CONTEXT_STAGE, pipeline.RUNBOOK_DEBOUNCE]
    subscribed.assert_not_called()
