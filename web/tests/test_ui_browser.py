"""The ops UI in headless Chromium against a live server and the real pipeline.

One responder's path through an incident: log in, declare, watch a new runbook
version arrive without a reload, run a safe action, see an unsafe one wait for
approval, post a status update from a template, take a role, resolve.
A screenshot of every step goes to test-artifacts/ui/. With
UPDATE_DOCS_SCREENSHOTS=1 the list and incident pages are also written to
docs/screenshots/ at desktop and phone widths.
"""

import os
from pathlib import Path

import pytest

from executor.tests.factories import responder
from testing.browser import ARTIFACTS, DESKTOP, DOCS, PASSWORD, PHONE

DECLARED = "Checkout database connection pool exhausted: too many connections"


@pytest.fixture
def ops_db(pg_url, db):
    """A real PostgreSQL target for the database checks, and for the unsafe action to aim at."""
    from executor.models import Target

    return Target.objects.create(name="orders-db", kind="postgres", base=pg_url)


class Shots:
    def __init__(self, page) -> None:
        self.page = page
        self.n = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str, *, full_page: bool = True) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.n:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


def _seed_other_incidents() -> None:
    """A few more incidents so the list looks like a working day, through the real services."""
    from django.utils import timezone

    from incident_response.management.commands.seed_demo import DEMO
    from incidents.models import Incident
    from incidents.services import incident_declare, incident_transition

    for severity, service, title, text in DEMO[1:]:
        incident_declare(title=title, description=text, severity=severity, service=service)
    resolved = incident_declare(
        title="Login emails delayed by 20 minutes",
        description="Password reset and login emails arrive 20 minutes late.",
        severity="SEV4",
        service="mailer",
    )
    incident_transition(incident=resolved, to_status="resolved")
    # Spread the ages out a little, as a real list would be.
    for i, incident in enumerate(Incident.objects.order_by("pk")):
        Incident.objects.filter(pk=incident.pk).update(
            detected_at=timezone.now() - timezone.timedelta(minutes=7 + 53 * i)
        )


@pytest.mark.django_db(transaction=True)
def test_responder_path_through_an_incident(chromium, live_server, settings, ops_db, pipeline):
    from playwright.sync_api import expect

    from executor.choices import ActionStatus
    from incidents.models import Incident, StatusUpdate
    from incidents.tests.factories import UserFactory

    settings.SITE_URL = live_server.url  # the demo health check probes this very server
    settings.ANTHROPIC_API_KEY = ""

    alice = UserFactory(username="alice", password=PASSWORD)
    UserFactory(username="bob", password=PASSWORD)
    alice = responder("alice")  # she acts on the incident
    _seed_other_incidents()

    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    shot = Shots(page)

    # Log in: any page sends an anonymous visitor to the login form first.
    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/accounts/login/?next=/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", PASSWORD)
    shot("login")
    page.click("button:has-text('Log in')")
    expect(page.locator("h1")).to_have_text("Incidents")
    shot("list")

    # Declare: the severity policy is beside the choice; submitting lands on the incident.
    page.click("text=Declare incident")
    expect(page.locator(".sev-choice").first).to_contain_text("Complete outage")
    page.fill("#id_title", DECLARED)
    page.fill("#id_description", "Requests time out; the pool is at its limit since 09:40.")
    page.check("input[name=severity][value=SEV2]")
    page.fill("#id_service", "checkout")
    shot("declare-form")
    page.click("button:has-text('Declare and start the runbook')")
    incident = Incident.objects.get(title=DECLARED)
    expect(page).to_have_url(f"{live_server.url}/incidents/{incident.pk}/")
    facts = page.locator("[data-testid=runbook-facts]")
    expect(facts).to_have_attribute("data-version", "1")
    expect(page.locator("[data-testid=checks] li").first).to_be_visible()
    shot("declared")

    # A marker on window survives only if the page is never reloaded.
    page.evaluate("window.__sameDocument = 'still here'")

    # Regenerate: v2 is queued, generated and checked; it appears in place.
    page.click("[data-testid=regenerate]")
    expect(facts).to_have_attribute("data-version", "2")
    checks = page.locator("[data-testid=checks] li")
    expect(checks).to_have_count(2)
    # The checks really ran against PostgreSQL: connection counts came back.
    expect(checks.first).to_contain_text("check_connections")
    expect(checks.first.locator(".badge")).to_have_text("OK")
    expect(page.locator("#timeline-list")).to_contain_text("Runbook v2 ready")
    assert page.evaluate("window.__sameDocument") == "still here"
    shot("regenerated")

    # A safe action: the confirm step repeats the plan; its result shows up in place.
    safe = page.locator("[data-testid=action][data-step-id=notify_responders]")
    expect(safe.locator("[data-testid=safety]")).to_have_text("SAFE")
    safe.locator("[data-testid=run]").click()
    expect(safe.locator(".confirm form pre")).to_contain_text("Would record on the incident")
    shot("run-confirm")
    safe.locator("[data-testid=confirm-run]").click()
    safe = page.locator("[data-testid=action][data-step-id=notify_responders]")
    expect(safe.locator("[data-testid=action-status]")).to_have_text("Succeeded")
    expect(safe.locator("[data-testid=action-result]")).to_contain_text("Result:")
    shot("safe-action-ran")

    # The unsafe one waits for an approver, with the reason and a link to the admin.
    unsafe = page.locator("[data-testid=action][data-step-id=cancel_stuck_queries]")
    expect(unsafe.locator("[data-testid=safety]")).to_have_text("UNSAFE")
    expect(unsafe).to_contain_text("destructive action: the registry always requires approval")
    expect(unsafe.locator("[data-testid=awaiting]")).to_contain_text("Waiting for approval")
    expect(unsafe.locator("[data-testid=run]")).to_have_count(0)
    assert "/admin/executor/actionrequest/" in unsafe.locator("a").first.get_attribute("href")
    unsafe.scroll_into_view_if_needed()
    shot("unsafe-awaiting-approval", full_page=False)

    # Status update from the customer template: filled from the incident, saved, not sent.
    page.select_option("#id_audience", "customer")
    expect(page.locator("#id_body")).to_have_value(
        __import__("re").compile("problem affecting checkout")
    )
    expect(page.locator("#status-box")).to_contain_text("Nothing is sent anywhere")
    shot("status-update-draft")
    page.click("button:has-text('Post update')")
    expect(page.locator("#timeline-list li").first).to_contain_text("Customer-facing notice")
    expect(page.locator("#messages")).to_contain_text("It was not sent anywhere")
    assert StatusUpdate.objects.get(incident=incident).audience == "customer"
    shot("status-update-posted")

    # Take the commander role: the header shows it.
    page.select_option("#id_commander", label="alice")
    page.click("button:has-text('Save roles')")
    commander = page.locator("[data-testid=roles] div", has_text="Commander").locator("dd")
    expect(commander).to_have_text("alice")
    shot("role-assigned")

    _docs_screenshots(context, live_server.url, incident.pk)

    # Resolve: status, time to resolve and time to acknowledge appear; the poller has nothing left to do
    # but watch the pending approval.
    page.click("button.resolve")
    expect(page.locator("[data-testid=status]")).to_have_text("Resolved")
    expect(page.locator("[data-testid=ttr]")).to_be_visible()
    expect(page.locator("[data-testid=mtta]")).to_be_visible()
    assert page.evaluate("window.__sameDocument") == "still here"
    shot("resolved")

    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.commander == alice
    assert incident.action_requests.filter(
        step_id="notify_responders", status=ActionStatus.SUCCEEDED
    ).exists()

    context.close()


def _docs_screenshots(context, base: str, pk: int) -> None:
    """The README's pictures: list and incident pages, desktop and phone."""
    targets = [ARTIFACTS]
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
        DOCS.mkdir(parents=True, exist_ok=True)
        targets.append(DOCS)
    page = context.new_page()
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        for name, url in (("list", f"{base}/?status=all"), ("incident", f"{base}/incidents/{pk}/")):
            page.goto(url)
            page.wait_for_load_state("networkidle")
            for folder in targets:
                page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
    page.close()
