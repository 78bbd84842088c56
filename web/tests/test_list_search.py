"""The list's search: title and service as one text, case-insensitive, literal; on
PostgreSQL through the trigram index over the same expression."""

import pytest
from django.db import connection
from django.urls import reverse

from incidents.models import Incident
from incidents.tests.factories import IncidentFactory, UserFactory
from web.selectors import IncidentFilters, incident_list, incident_search

pytestmark = pytest.mark.django_db


def _found(q: str) -> set[str]:
    rows = incident_list(filters=IncidentFilters(status="all", q=q))
    return {i.title for i in rows[: rows.count()]}


def test_search_matches_title_and_service_substrings_in_any_case():
    IncidentFactory(title="Checkout latency high", service="checkout")
    IncidentFactory(title="Disk full", service="payments-db")
    IncidentFactory(title="100% CPU on web_1", service="web")
    assert _found("LATENCY") == {"Checkout latency high"}
    assert _found("payments") == {"Disk full"}  # the service, not the title
    assert _found("full payments") == {"Disk full"}  # across title and service
    assert _found("100%") == {"100% CPU on web_1"}  # % and _ are literal characters
    assert _found("b_1") == {"100% CPU on web_1"}
    assert _found("%") == {"100% CPU on web_1"}
    assert _found("nothing like it") == set()


def test_the_list_page_searches(client):
    client.force_login(UserFactory())
    incident = IncidentFactory(title="Kafka consumer rebalance storm", service="orders")
    IncidentFactory(title="Something else", service="web")
    body = client.get(reverse("incidents:list"), {"q": "rebalance", "status": "all"})
    text = body.content.decode()
    assert incident.title in text and "Something else" not in text


def test_postgresql_plans_the_search_on_the_trigram_index():
    if connection.vendor != "postgresql":
        pytest.skip("the trigram index exists on PostgreSQL only")
    IncidentFactory.create_batch(30, title="Checkout latency high", service="checkout")
    for q in ("rebalance", "#12"):  # a word, and a number that may also be an id
        _assert_uses_index(incident_search(Incident.objects.all(), q))


def test_postgresql_searches_open_incidents_on_their_own_index():
    """The open rows and their count read the open-only trigram index, not the whole
    table's ANDed with the status index."""
    if connection.vendor != "postgresql":
        pytest.skip("the trigram indexes exist on PostgreSQL only")
    IncidentFactory.create_batch(30, title="Checkout latency high", service="checkout")
    rows = incident_list(filters=IncidentFilters(status="all", q="payments"))
    with connection.cursor() as cur:
        # On a tiny table any index looks as good; without the others (dropped inside
        # the test's transaction, which rolls back) the plan shows whether this one can
        # serve the open rows' expression and status list at all.
        cur.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'incidents_incident' "
            "AND indexname NOT IN ('incident_open_search_trgm', 'incidents_incident_pkey')"
        )
        for (other,) in cur.fetchall():
            cur.execute(f'DROP INDEX "{other}"')
    _assert_uses_index(rows.open_qs, "incident_open_search_trgm")


def test_the_open_index_covers_exactly_the_statuses_the_list_calls_open():
    """The index's WHERE is frozen in its migration; the list's open statuses come from
    IncidentStatus. If they drift apart PostgreSQL silently stops using the index."""
    import importlib

    from incidents.choices import IncidentStatus

    migration = importlib.import_module(
        "incidents.migrations.0015_incident_open_search_trigram_index"
    )
    listed = migration.CREATE_INDEX.split("WHERE status IN (")[1].rstrip(")")
    assert [s.strip(" '") for s in listed.split(",")] == [
        s for s in IncidentStatus.values if s != IncidentStatus.RESOLVED
    ]


def _assert_uses_index(searched, index: str = "incident_search_trgm") -> None:
    sql, params = searched.query.sql_with_params()
    with connection.cursor() as cur:
        # A tiny table makes a sequential scan cheapest; forbid it to see whether the
        # index can serve the expression at all (it cannot if the two drifted apart).
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert index in plan, plan


def test_the_list_counts_only_as_far_as_paging_needs(client, monkeypatch):
    """Past the limit the list says "50+" rather than counting every match, and paging
    on from any page still reaches every incident."""
    from web import views

    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 30)
    client.force_login(UserFactory())
    IncidentFactory.create_batch(60, title="Checkout latency high", status="resolved")
    url = reverse("incidents:list")

    def pager(page: int) -> str:
        body = client.get(url, {"status": "all", "q": "latency", "page": page}).content.decode()
        return " ".join(body.split('<nav class="pager"')[1].split("</nav>")[0].split())

    assert "Page 1 of 2+ · 50+ incidents" in pager(1)  # counted to page 2, then stopped
    assert "Page 2 of 3 · 60 incidents" in pager(2) and "Older" in pager(2)
    assert "Page 3 of 3 · 60 incidents" in pager(3) and "Older" not in pager(3)


def test_a_search_counts_less_far_than_the_plain_list(client, monkeypatch):
    from web import views

    monkeypatch.setattr(views, "COUNT_LIMIT", 60)
    monkeypatch.setattr(views, "SEARCH_COUNT_LIMIT", 30)
    client.force_login(UserFactory())
    IncidentFactory.create_batch(70, title="Checkout latency high", status="resolved")
    url = reverse("incidents:list")

    def pager(**query) -> str:
        body = client.get(url, {"status": "all", **query}).content.decode()
        return " ".join(body.split('<nav class="pager"')[1].split("</nav>")[0].split())

    assert "60+ incidents" in pager()
    assert "50+ incidents" in pager(q="latency")  # two pages' worth, the least it counts
