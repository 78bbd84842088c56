import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import Incident


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
