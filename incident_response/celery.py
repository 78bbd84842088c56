import gc
import logging
import os

from celery import Celery
from celery.signals import (
    task_postrun,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")

app = Celery("incident_response")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="incident_response.noop", ignore_result=False)
def noop() -> str:
    """An empty task: the broker round trip that benchmarks measure against."""
    return "ok"


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(task=None, **kwargs) -> None:
    """Database connections in a worker follow Django's rule for requests (CONN_MAX_AGE,
    CONN_HEALTH_CHECKS); CELERY_DB_REUSE_MAX stops Celery closing them after every task,
    which cost a new PostgreSQL connection per task. Eager tasks run inside the caller's
    request, and its transaction, so they leave its connection alone."""
    if task is None or task.request.is_eager:
        return
    from django.db import close_old_connections

    close_old_connections()


@worker_process_shutdown.connect
@worker_shutdown.connect
def _close_target_sessions(**kwargs) -> None:
    """The database checks' pooled sessions end with the worker process, not at the
    server's idle timeout."""
    # Imported here: this module loads before Django's apps are ready.
    from executor.connectors.postgres import close_pooled

    close_pooled()


@worker_process_init.connect
def _warm_clients(**kwargs) -> None:
    """Build the clients an incident needs when the worker process starts, not inside the
    first incident: the checks' shared HTTP client (its SSL context, tens of ms of CPU),
    the artifact storage's clients (on S3 a boto3 session per thread, for this thread and
    the evidence store pool) and, with an API key, the Anthropic client."""
    from django.conf import settings

    from evidence.artifacts import storage_warm
    from evidence.stage import store_pool_warm
    from executor.connectors.http import shared_client
    from runbooks.generation import claude

    warmers = [shared_client, storage_warm, store_pool_warm]
    if settings.ANTHROPIC_API_KEY:
        warmers.append(claude.client)
    for warm in warmers:
        try:
            warm()
        except Exception:
            # Not fatal: the first incident builds it instead (and reports what fails).
            logging.getLogger(__name__).exception("warming %s failed", warm.__name__)
    # What is loaded by now (modules, models, clients) lives as long as the process: out
    # of the collector's reach, an oldest-generation collection inside an incident walks
    # only what that incident made (unfrozen, one took some 200 ms).
    gc.freeze()
