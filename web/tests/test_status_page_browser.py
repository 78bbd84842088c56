"""The public status page in headless Chromium: no login, drafts hidden until published.

The screenshot goes to test-artifacts/ui/, or with UPDATE_DOCS_SCREENSHOTS=1 to
docs/screenshots/status-page.png.
"""

from datetime import timedelta

import pytest

from testing.browser import DESKTOP, screenshot_dir


@pytest.mark.django_db(transaction=True)
def test_status_page_shows_only_published_notices(chromium, live_server):  # noqa: F811
    from django.contrib.auth.models import Permission
    from django.utils import timezone
    from playwright.sync_api import expect

    from executor.models import Service
    from incidents.models import Incident
    from incidents.services import (
        incident_transition,
        status_update_post,
        status_update_publish,
    )
    from incidents.tests.factories import IncidentFactory, UserFactory

    for name in ("api", "checkout", "mailer", "search"):
        Service.objects.create(name=name)
    publisher = UserFactory(username="pat")
    publisher.user_permissions.add(Permission.objects.get(codename="publish_status"))
    now = timezone.now()
    active = IncidentFactory(severity="SEV2", service="checkout", detected_at=now)
    status_update_publish(
        update=status_update_post(
            incident=active,
            audience="customer",
            body="Some checkouts are failing. We have found the cause and are rolling back.",
        ),
        actor=publisher,
    )
    draft = status_update_post(
        incident=active,
        audience="customer",
        body="The rollback has finished; we are watching error rates.",
    )
    past = IncidentFactory(severity="SEV3", service="search", detected_at=now - timedelta(days=2))
    status_update_publish(
        update=status_update_post(
            incident=past, audience="customer", body="Search results were slow; fixed."
        ),
        actor=publisher,
    )
    incident_transition(incident=past, to_status="resolved")
    Incident.objects.filter(pk=past.pk).update(resolved_at=now - timedelta(days=2))

    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(live_server.url + "/status/")
    expect(page).to_have_url(live_server.url + "/status/")  # no login on the way
    expect(page.locator("[data-testid=overall]")).to_have_text("Some systems are affected")
    expect(page.locator("[data-testid=components]")).to_contain_text("Partial outage")
    expect(page.locator("[data-testid=active-incident]")).to_contain_text("rolling back")
    expect(page.locator("body")).not_to_contain_text("The rollback has finished")
    expect(page.locator("body")).to_contain_text("Search results were slow; fixed.")

    status_update_publish(update=draft, actor=publisher)
    page.reload()
    expect(page.locator("[data-testid=active-incident]")).to_contain_text(
        "The rollback has finished"
    )
    page.screenshot(path=str(screenshot_dir() / "status-page.png"), full_page=True)
    context.close()
