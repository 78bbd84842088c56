"""The per-minute budget of Claude generations, shared by every worker.

With Redis configured (production: it is the broker already) a minute's budget is one
Redis counter: one round trip, no SQL statement on the pipeline's critical path. Without
Redis (the embedded default) or when Redis does not answer, a row per minute in the
database counts instead. Either way two workers can never both take the last call.
"""

import logging
from datetime import datetime, timedelta
from functools import lru_cache

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from runbooks.models import ModelCallBudget

log = logging.getLogger(__name__)

# A minute's counter outlives its minute a little, for workers whose clocks lag.
_KEY_TTL_SECONDS = 120


def model_call_take(*, now: datetime | None = None) -> bool:
    """Take one model call from this minute's budget; False when it is spent.
    A budget of 0 means no limit."""
    budget = settings.ANTHROPIC_CALLS_PER_MINUTE
    if budget <= 0:
        return True
    minute = (now or timezone.now()).replace(second=0, microsecond=0)
    if settings.REDIS_URL:
        try:
            return _take_redis(settings.REDIS_URL, minute, budget)
        except redis.RedisError as exc:
            log.warning("model budget: Redis did not answer (%s); counting in the database", exc)
    return _take_database(minute, budget)


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # Short timeouts: a generation must not wait on a stalled Redis, the database counts.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)


def _take_redis(url: str, minute: datetime, budget: int) -> bool:
    key = f"{settings.MODEL_BUDGET_KEY_PREFIX}:{minute:%Y%m%dT%H%MZ}"
    pipe = _client(url).pipeline(transaction=True)
    pipe.incr(key)
    pipe.expire(key, _KEY_TTL_SECONDS)
    taken, _ = pipe.execute()
    # INCR is atomic: the call that makes the count budget + 1 and every later one
    # are refused, whoever asks.
    return int(taken) <= budget


def _take_database(minute: datetime, budget: int) -> bool:
    def take() -> bool:
        # One conditional UPDATE: two workers can never take the last call both.
        return bool(
            ModelCallBudget.objects.filter(minute=minute, calls__lt=budget).update(
                calls=F("calls") + 1
            )
        )

    # Most calls find this minute's row: one statement.
    if take():
        return True
    if ModelCallBudget.objects.filter(minute=minute).exists():
        return False  # spent
    try:
        with transaction.atomic():
            ModelCallBudget.objects.create(minute=minute)
    except IntegrityError:
        pass  # another worker opened this minute first
    else:
        # A new minute: forget the old ones (a handful of rows at most).
        ModelCallBudget.objects.filter(minute__lt=minute - timedelta(hours=1)).delete()
    return take()
