"""The production worker command for bench/pipeline.py, with two measuring hooks.

    python bench/_pipeline_worker.py <celery worker arguments>

- Every SQL statement the worker sends on Django's connections is counted by kind
  (SELECT, INSERT, UPDATE, ..., BEGIN and COMMIT included); after each task the
  process writes its running totals to $BENCH_COUNTS_DIR/<pid>.json.
- With BENCH_COLLECTOR_DELAY (seconds), each evidence collector sleeps that long
  before doing its real work: "five collectors of 300 ms each".

Nothing here changes what the worker does otherwise; the command line is fly.toml's.
"""

import functools
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")

import django  # noqa: E402

django.setup()

from celery.bin.celery import main as celery_main  # noqa: E402
from celery.signals import task_postrun  # noqa: E402
from django.db.backends.base.base import BaseDatabaseWrapper  # noqa: E402
from django.db.backends.signals import connection_created  # noqa: E402

COUNTS: Counter = Counter()
COUNTS_DIR = os.environ.get("BENCH_COUNTS_DIR", "")


def statement_kind(sql: str) -> str:
    return (sql.lstrip().split(None, 1) or ["?"])[0].upper()


def _count(execute, sql, params, many, context):
    COUNTS[statement_kind(sql)] += 1
    return execute(sql, params, many, context)


def _on_connection(sender, connection, **kwargs) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


connection_created.connect(_on_connection, weak=False)

_commit = BaseDatabaseWrapper.commit
_set_autocommit = BaseDatabaseWrapper.set_autocommit


def _counting_commit(self):
    COUNTS["COMMIT"] += 1
    return _commit(self)


def _counting_set_autocommit(self, autocommit, *args, **kwargs):
    if not autocommit:
        COUNTS["BEGIN"] += 1  # the driver opens a transaction before the next statement
    return _set_autocommit(self, autocommit, *args, **kwargs)


BaseDatabaseWrapper.commit = _counting_commit
BaseDatabaseWrapper.set_autocommit = _counting_set_autocommit


@task_postrun.connect(weak=False)
def _write_counts(**kwargs) -> None:
    if COUNTS_DIR:
        path = Path(COUNTS_DIR) / f"{os.getpid()}.json"
        path.write_text(json.dumps(dict(COUNTS)))


delay = float(os.environ.get("BENCH_COLLECTOR_DELAY") or 0)
if delay:
    from evidence import collectors

    def _slowed(fn):
        @functools.wraps(fn)
        def run(scope, deadline):
            time.sleep(delay)
            return fn(scope, deadline)

        return run

    for table in (collectors.LOCAL, collectors.REMOTE):
        for name, fn in list(table.items()):
            table[name] = _slowed(fn)


if __name__ == "__main__":
    sys.argv = ["celery", "-A", "incident_response", *sys.argv[1:]]
    sys.exit(celery_main())
