import pytest

EVERY_KIND = {
    "main-db": {"kind": "postgres", "url": "postgresql://db.internal/app"},
    "main-file": {"kind": "sqlite", "url": "sqlite:///var/lib/app/app.sqlite3"},
    "main-cache": {"kind": "redis", "url": "redis://cache.internal:6379/0"},
    "main-web": {"kind": "http", "url": "http://app.internal/healthz"},
    "main-metrics": {"kind": "prometheus", "url": "http://prometheus.internal:9090"},
    "main-logs": {"kind": "loki", "url": "http://loki.internal:3100"},
    "main-chat": {"kind": "slack", "url": "https://slack.com/api"},
    "main-fly": {"kind": "fly", "url": "https://api.machines.dev/v1/apps/main"},
}


@pytest.fixture
def every_kind_of_target(settings):
    """A target of every kind, so every action is offered; tests of the filter narrow this."""
    settings.EXECUTOR_TARGETS = dict(EVERY_KIND)
