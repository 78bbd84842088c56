"""The learning pages in headless Chromium: postmortem editor, metrics, weekly report.

Screenshots go to test-artifacts/ui/learning-*.png, and with UPDATE_DOCS_SCREENSHOTS=1
to docs/screenshots/ for the README.
"""

import os
from datetime import timedelta

import pytest

from testing.browser import ARTIFACTS, DESKTOP, DOCS, PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _shot(page, name: str) -> None:
    folders = [ARTIFACTS]
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        folders.append(DOCS)
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _history() -> None:
    """Twelve weeks of incidents with figures that vary, for the charts."""
    from django.utils import timezone

    from incidents.tests.factories import AlertFactory, AlertSourceFactory, IncidentFactory
    from learning.tests.factories import FollowUpFactory

    now = timezone.now()
    services = ["checkout", "payments", "search", "auth"]
    for i in range(60):
        detected = now - timedelta(hours=i * 31)
        IncidentFactory(
            title=f"Past incident {i}",
            detected_at=detected,
            acknowledged_at=detected + timedelta(minutes=2 + (i * 7) % 13),
            resolved_at=detected + timedelta(minutes=25 + (i * 17) % 90),
            status="resolved",
            severity=f"SEV{1 + i % 4}",
            service=services[i % 4],
        )
    FollowUpFactory(
        title="Alert on pool saturation", due_date=timezone.localdate() - timedelta(days=3)
    )
    AlertFactory(
        source=AlertSourceFactory(slug="batch"), incident=None, title="DiskAlmostFull on batch-7",
        count=14, status="resolved", last_seen=now - timedelta(days=timezone.localdate().weekday() + 3),
    )  # fmt: skip


def test_postmortem_editor_metrics_and_weekly_report(chromium, live_server, settings):  # noqa: F811
    from playwright.sync_api import expect

    from learning.models import Postmortem
    from learning.services import postmortem_draft
    from learning.tests.factories import postmortem_editor, worked_incident

    settings.ANTHROPIC_API_KEY = ""
    postmortem_editor("reviewer")  # the factory password is PASSWORD
    incident = worked_incident()
    postmortem_draft(incident_id=incident.pk)  # a worker drafts it in the services run
    _history()

    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Incidents")

    # The postmortem, from the incident's header; edited in Markdown, rendered inert.
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    page.click("[data-testid=postmortem-link]")
    expect(page.locator("[data-testid=pm-status]")).to_have_text("Draft")
    expect(page.locator("[data-section=root_cause]")).to_contain_text("connection leak")
    page.click("[data-testid=edit]")
    page.fill(
        "#id_summary",
        "Checkout was **slow** for 40 minutes. <script>window.__pwned = 1</script> "
        "[details](javascript:window.__pwned=2)",
    )
    _shot(page, "postmortem-editor")
    page.click("[data-testid=save]")
    summary = page.locator("[data-section=summary]")
    expect(summary.locator("strong")).to_have_text("slow")
    assert page.evaluate("window.__pwned") is None
    assert summary.locator("a").count() == 1 and summary.locator("a").get_attribute("href") is None
    page.click("[data-testid=to-review]")
    expect(page.locator("[data-testid=pm-status]")).to_have_text("In review")
    expect(page.locator("[data-testid=pm-timeline] li").first).to_contain_text("Declared SEV2")
    _shot(page, "postmortem")
    assert Postmortem.objects.get(incident=incident).status == "in_review"

    page.click("nav >> text=Metrics")
    expect(page.locator("[data-testid=trend-chart] svg polyline").first).to_be_visible()
    expect(page.locator("[data-testid=mix-chart] svg rect").first).to_be_visible()
    _shot(page, "metrics")

    page.click("nav >> text=Weekly report")
    expect(page.locator("[data-testid=noisy]")).to_contain_text("DiskAlmostFull on batch-7")
    expect(page.locator("[data-testid=overdue]")).to_contain_text("Alert on pool saturation")
    _shot(page, "weekly-report")
    context.close()
