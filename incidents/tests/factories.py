"""Incidents, their alerts and updates, and the people on them, as tests need them."""

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.choices import AlertStatus, TimelineKind
from incidents.models import Alert, AlertSource, Incident, StatusUpdate, TimelineEvent


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw-for-tests-only")


class IncidentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Incident

    title = factory.Sequence(lambda n: f"Checkout latency high #{n}")
    description = "Checkout requests are slow since 09:00."
    severity = "SEV3"
    service = "checkout"
    detected_at = factory.LazyFunction(timezone.now)

    class Params:
        # Every role filled, each by a person of its own.
        with_roles = factory.Trait(
            commander=factory.SubFactory(UserFactory),
            comms_lead=factory.SubFactory(UserFactory),
            tech_lead=factory.SubFactory(UserFactory),
            scribe=factory.SubFactory(UserFactory),
        )


class TimelineEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEvent

    incident = factory.SubFactory(IncidentFactory)
    kind = TimelineKind.NOTE
    message = factory.Sequence(lambda n: f"note {n}")


class StatusUpdateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StatusUpdate

    incident = factory.SubFactory(IncidentFactory)
    audience = StatusUpdate.Audience.INTERNAL
    body = "Investigating elevated checkout latency."
    # Internal and executive updates are published when posted; customer ones start as drafts.
    published_at = factory.LazyAttribute(
        lambda u: None if u.audience == StatusUpdate.Audience.CUSTOMER else timezone.now()
    )


class AlertSourceFactory(factory.django.DjangoModelFactory):
    """A source authenticating with a bearer token read from HOOK_TOKEN."""

    class Meta:
        model = AlertSource
        django_get_or_create = ("slug",)  # alerts made one by one share their source

    kind = "generic"
    slug = factory.LazyAttribute(lambda s: s.kind)
    name = factory.LazyAttribute(lambda s: s.slug)
    auth_mode = "bearer"
    secret_env = "HOOK_TOKEN"


class AlertFactory(factory.django.DjangoModelFactory):
    """A firing alert, seen once, now."""

    class Meta:
        model = Alert

    source = factory.SubFactory(AlertSourceFactory)
    dedup_key = factory.Sequence(lambda n: f"alert-{n}")
    content_hash = factory.LazyAttribute(lambda a: f"hash-{a.dedup_key}")
    status = AlertStatus.FIRING
    title = factory.Sequence(lambda n: f"High error rate #{n}")
    first_seen = factory.LazyFunction(timezone.now)
    last_seen = factory.SelfAttribute("first_seen")
