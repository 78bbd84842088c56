"""Runbooks in the states the pipeline leaves them; a ready one has its artifact stored."""

import copy

import factory
from django.utils import timezone

from incidents.tests.factories import IncidentFactory
from runbooks.artifacts import artifact_store
from runbooks.choices import RunbookAuthor, RunbookStatus
from runbooks.models import Runbook

SAMPLE_DOCUMENT = {
    "incident_type": "performance_degradation",
    "affected_system": "checkout-db",
    "confidence": 0.7,
    "hypotheses": ["missing statistics on the orders table"],
    "checks": [
        {"id": "check_health", "action": "http.health_check", "params": {}},
    ],
    "recommended_actions": [
        {
            "id": "notify_team",
            "action": "alert.notify",
            "safe": True,
            "params": {"message": "Looking into checkout latency"},
            "rationale": "Keep people informed.",
        },
    ],
    "rollback_plan": "Nothing to roll back: the checks only read.",
}


def sample_document(**overrides) -> dict:
    doc = copy.deepcopy(SAMPLE_DOCUMENT)
    doc.update(overrides)
    return doc


class RunbookFactory(factory.django.DjangoModelFactory):
    """A queued runbook; `ready=True` stores its artifact as runbook_generate does, so the
    executor loads and verifies it like any other."""

    class Meta:
        model = Runbook

    incident = factory.SubFactory(IncidentFactory)
    version = 1
    status = RunbookStatus.QUEUED

    class Params:
        ready = factory.Trait(
            status=RunbookStatus.READY,
            author=RunbookAuthor.OFFLINE,
            artifact=factory.LazyFunction(sample_document),
            generated_at=factory.LazyFunction(timezone.now),
        )

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        if kwargs.get("artifact") is not None and not kwargs.get("artifact_key"):
            key, digest = artifact_store(
                incident_id=kwargs["incident"].pk,
                version=kwargs["version"],
                data=kwargs["artifact"],
            )
            kwargs.update(artifact_key=key, artifact_sha256=digest)
        return super()._create(model_class, *args, **kwargs)


def ready_runbook(document: dict | None = None, *, incident=None, version: int = 1) -> Runbook:
    """A ready runbook whose artifact is really stored, as runbook_generate leaves it."""
    extra = {"incident": incident} if incident is not None else {}
    return RunbookFactory(
        ready=True, artifact=document or sample_document(), version=version, **extra
    )
