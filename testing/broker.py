"""Point the Celery app at another broker for a while: a real one, or one that is down."""

from collections.abc import Iterator
from contextlib import contextmanager

from testing.services import dead_redis_url


def _reset_connections(app) -> None:
    # Drop the cached pools (not close them: kombu shares them by URL) so the next
    # publish connects to the broker now configured.
    app._pool = None
    app.amqp._producer_pool = None


@contextmanager
def broker(url: str, *, run_eager: bool, transport_options: dict | None = None) -> Iterator[None]:
    """Point the Celery app at the broker at `url`, with extra transport options."""
    from incident_response.celery import app

    saved = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.task_always_eager = url, run_eager
    app.conf.broker_transport_options = {**(saved[2] or {}), **(transport_options or {})}
    _reset_connections(app)
    try:
        yield
    finally:
        (
            app.conf.broker_url,
            app.conf.task_always_eager,
            app.conf.broker_transport_options,
        ) = saved
        _reset_connections(app)


@contextmanager
def broker_down() -> Iterator[None]:
    """A web process with a worker to hand work to, whose broker does not answer.

    The publish fails on the first refused connection: kombu's default is to retry the
    connection for about six seconds before it gives up, which only slows the test.
    """
    with broker(dead_redis_url(), run_eager=False, transport_options={"max_retries": 0}):
        yield
