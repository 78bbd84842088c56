import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")

app = Celery("incident_response")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="incident_response.noop")
def noop() -> str:
    """An empty task: the broker round trip that benchmarks measure against."""
    return "ok"
