"""Django's deployment checks pass with production-like settings from the environment."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def _check_deploy(**extra: str) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "BUCKET_NAME"))
        and not k.startswith(("SECURE_", "SERVED_OVER_HTTPS", "PRODUCTION"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="incident_response.settings",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="example.org",
        **extra,
    )
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_checks_report_no_warnings():
    result = _check_deploy()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout and "WARNING" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("variable", "warning"),
    [("SECURE_HSTS_SECONDS", "security.W004"), ("SECURE_HSTS_PRELOAD", "security.W021")],
)
def test_hsts_is_configurable_and_checked(variable, warning):
    result = _check_deploy(**{variable: "0" if variable.endswith("SECONDS") else "false"})
    assert result.returncode != 0 and warning in result.stderr + result.stdout
