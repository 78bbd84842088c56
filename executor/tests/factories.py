"""Executions, action requests, approvals and the target catalog, as tests need them."""

import factory
from django.contrib.auth.models import Permission

from executor.choices import ActionStatus, Decision, ExecutionStatus
from executor.models import ActionRequest, Approval, Execution, Service, Target
from incidents.tests.factories import UserFactory
from runbooks.tests.factories import RunbookFactory


class ExecutionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Execution

    runbook = factory.SubFactory(RunbookFactory, ready=True)
    status = ExecutionStatus.RUNNING


class TargetFactory(factory.django.DjangoModelFactory):
    """A catalog target; the secret, when there is one, is the name of a variable."""

    class Meta:
        model = Target

    name = factory.Sequence(lambda n: f"target-{n}")
    kind = "postgres"


class ServiceFactory(factory.django.DjangoModelFactory):
    """A catalog service; `targets=[...]` attaches them."""

    class Meta:
        model = Service
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"service-{n}")

    @factory.post_generation
    def targets(self, create: bool, extracted, **kwargs) -> None:
        if create and extracted:
            self.targets.add(*extracted)


class ActionRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ActionRequest

    runbook = factory.SubFactory(RunbookFactory, ready=True)
    incident = factory.SelfAttribute("runbook.incident")
    step_id = factory.Sequence(lambda n: f"step_{n}")
    action = "alert.notify"
    status = ActionStatus.PROPOSED


class ApproverFactory(UserFactory):
    """A person allowed to approve actions; staff ones can also see the queue in admin."""

    class Meta:
        skip_postgeneration_save = True

    @factory.post_generation
    def permissions(self, create: bool, extracted, **kwargs) -> None:
        if not create:
            return
        codenames = ["approve_actionrequest"] + (["view_actionrequest"] if self.is_staff else [])
        self.user_permissions.add(*Permission.objects.filter(codename__in=codenames))


class ApprovalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Approval

    action_request = factory.SubFactory(ActionRequestFactory)
    approver = factory.SubFactory(ApproverFactory)
    decision = Decision.APPROVE


def responder(username: str):
    """A member of the `responders` group, as its data migration makes it (a flushed
    database lost the group: make it again, idempotently)."""
    import importlib

    from django.apps import apps as django_apps
    from django.contrib.auth.models import Group

    migration = importlib.import_module("executor.migrations.0010_responders_group")
    migration.create_group(django_apps, None)
    user = UserFactory(username=username)
    user.groups.add(Group.objects.get(name="responders"))
    return type(user).objects.get(pk=user.pk)  # fresh permission cache
