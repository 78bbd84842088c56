"""Querysets compiled once per shape: the same rows as the queryset, the values bound as
parameters, and every run seen by Django's query log."""

import pytest
from django.db import connection
from django.db.models import Count, F
from django.test.utils import CaptureQueriesContext

from incidents.compiled import Compiled
from incidents.models import Incident
from incidents.tests.factories import IncidentFactory, UserFactory

pytestmark = pytest.mark.django_db


def _by_ids(shape, *, ids):
    qs = Incident.objects.filter(pk__in=ids).annotate(
        commander_name=F("commander__username"), events=Count("timeline")
    )
    if shape == "sev1":
        qs = qs.filter(severity="SEV1")
    return qs.values("id", "title", "detected_at", "commander_name", "events")


def _plain(shape, ids):
    return sorted(_by_ids(shape, ids=ids), key=lambda r: r["id"])


def test_rows_are_the_querysets_rows_for_any_ids_and_shape():
    commander = UserFactory(username="alice")
    incidents = [
        IncidentFactory(severity=sev, commander=commander if i % 2 else None)
        for i, sev in enumerate(["SEV1", "SEV2", "SEV1", "SEV3", "SEV1"])
    ]
    ids = [i.pk for i in incidents]
    compiled = Compiled(_by_ids)
    for shape in (None, "sev1"):
        for chosen in (ids[:2], ids[2:4], ids[1:3], ids, [ids[0], 10**9]):
            got = sorted(compiled.rows(shape, ids=chosen), key=lambda r: r["id"])
            assert got == _plain(shape, chosen)
    # One plan per shape and number of ids (two and five), reused for other ids.
    assert len(compiled._plans) == 2 * 2
    assert all(plan is not None for plan in compiled._plans.values())
    # Times come back as the ORM gives them (aware, on both databases).
    row = compiled.rows(None, ids=[ids[0]])[0]
    assert row["detected_at"] == incidents[0].detected_at and row["detected_at"].tzinfo


def test_values_stay_parameters_and_each_run_is_logged():
    incident = IncidentFactory(pk=987_654, title="x'); DROP TABLE incidents_incident; --")
    compiled = Compiled(_by_ids)
    compiled.rows(None, ids=[incident.pk])
    with CaptureQueriesContext(connection) as ctx:
        rows = compiled.rows(None, ids=[incident.pk])
    assert rows[0]["title"] == incident.title
    assert len(ctx.captured_queries) == 1  # query-count budgets see it
    assert '"incidents_incident"' in ctx.captured_queries[0]["sql"]  # logged as written
    plan = next(iter(compiled._plans.values()))
    assert str(incident.pk) not in plan.sql and "%s" in plan.sql


def test_a_build_that_drops_its_argument_is_never_cached():
    """A value that never reaches the parameters (here: ignored) would make the kept
    SQL answer for the first call's values: such a build runs as a queryset each time."""
    a, b = IncidentFactory(title="a"), IncidentFactory(title="b")
    compiled = Compiled(lambda shape, *, pk: Incident.objects.filter(pk=a.pk).values("title"))
    assert compiled.rows(None, pk=b.pk) == [{"title": "a"}]
    assert list(compiled._plans.values()) == [None]
    # And one whose value goes into the SQL text is not cached either.
    inlined = Compiled(
        lambda shape, *, n: Incident.objects.order_by("pk").values("title")[: abs(n) % 5 + 1]
    )
    assert [r["title"] for r in inlined.rows(None, n=1)] == ["a", "b"]
    assert [r["title"] for r in inlined.rows(None, n=0)] == ["a"]
    assert list(inlined._plans.values()) == [None]


def test_model_querysets_give_instances_with_related_rows_and_annotations():
    commander = UserFactory(username="alice")
    wanted = IncidentFactory(service="checkout", commander=commander)
    IncidentFactory(service="billing", commander=commander)
    IncidentFactory(service="checkout")

    def build(shape, *, service, since, ids):
        qs = (
            Incident.objects.select_related("commander")
            .annotate(events=Count("timeline"))
            .filter(service=service, detected_at__gte=since, pk__in=ids)
        )
        return qs.order_by("pk")

    compiled = Compiled(build)
    args = {"service": "checkout", "since": wanted.detected_at, "ids": [wanted.pk, wanted.pk + 1]}
    for _ in range(2):
        got = compiled.rows(None, **args)
        expected = list(build(None, **args))
        assert [(i.pk, i.title, i.events) for i in got] == [
            (i.pk, i.title, i.events) for i in expected
        ]
        assert got[0].commander.username == "alice"  # select_related, no further query
        assert not got[0]._state.adding and got[0]._state.db == expected[0]._state.db
    # PostgreSQL keeps the plan (times are parameters); SQLite's backend turns times
    # into text, so there the build runs as a queryset each time.
    kept = next(iter(compiled._plans.values()))
    assert (kept is not None) == (connection.vendor == "postgresql")
    assert compiled.rows(None, **dict(args, service="nowhere")) == []


def test_text_values_stay_parameters():
    hostile = "x'); DROP TABLE incidents_incident; --"
    incident = IncidentFactory(service=hostile)
    compiled = Compiled(lambda shape, *, service: Incident.objects.filter(service=service))
    assert compiled.first(None, service=hostile).pk == incident.pk
    assert compiled.first(None, service="checkout") is None
    # Kept, with the text bound in a parameter slot (a value that went into the SQL
    # text, or vanished, leaves no plan: the build would run as a queryset instead).
    plan = next(iter(compiled._plans.values()))
    assert plan is not None and [name for _, name, _ in plan.slots] == ["service"]


def test_unsupported_values_and_querysets_are_refused():
    compiled = Compiled(lambda shape, *, pk: Incident.objects.filter(pk=pk))
    with pytest.raises(TypeError):
        compiled.rows(None, pk=1.5)
    with pytest.raises(TypeError):
        compiled.rows(None, pk=True)
    listed = Compiled(lambda shape, *, pk: Incident.objects.filter(pk=pk).values_list("pk"))
    with pytest.raises(TypeError):
        listed.rows(None, pk=1)


def test_postgresql_prepares_a_compiled_statement_once_per_connection():
    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's (SQLite plans each time anyway)")
    threshold = connection.connection.prepare_threshold
    if threshold is None:
        pytest.skip("DATABASE_PREPARE_THRESHOLD=0: preparing is turned off")
    incident = IncidentFactory()
    compiled = Compiled(_by_ids)
    for _ in range(threshold + 1):
        assert compiled.rows(None, ids=[incident.pk])[0]["id"] == incident.pk
    with connection.cursor() as cur:
        cur.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cur.fetchall()]
    assert any('"incidents_incident"' in s and "$1" in s for s in prepared), prepared
