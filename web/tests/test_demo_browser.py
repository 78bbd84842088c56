"""The demo as a newcomer meets it: after `make run`'s seeding, with no admin setup.

The approver finds a destructive action awaiting approval in the queue (VACUUM of
the app's own SQLite file, a real embedded target), approves it, and sees it
run; the responder who caused it may not approve it (four eyes).
"""

import io
import sqlite3

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from executor.choices import ActionStatus, Safety
from executor.models import ActionRequest
from executor.policy import is_responder, may_approve
from executor.services.approvals import action_request_reject
from learning.permissions import may_edit_postmortem, may_publish_postmortem
from testing.browser import ARTIFACTS, DESKTOP, DOCS, PHONE

pytestmark = pytest.mark.django_db(transaction=True)


def _shot(page, name: str) -> None:
    """test-artifacts/ui/, and docs/screenshots/ with UPDATE_DOCS_SCREENSHOTS=1."""
    import os

    folders = [ARTIFACTS] + ([DOCS] if os.environ.get("UPDATE_DOCS_SCREENSHOTS") else [])
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def _pages_as(chromium, base: str, username: str, password: str, pk: int) -> None:
    """The incident list and the incident page, desktop and phone, signed in as `username`."""
    from playwright.sync_api import expect

    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(base + reverse("login"))
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit], input[type=submit]")
    expect(page.locator("h1")).to_have_text("Incidents")
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        page.goto(base + "/")
        page.wait_for_load_state("networkidle")
        expect(page.get_by_text("Timeline page slow").first).to_be_visible()
        # Nothing, the menu included, makes the page wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
        _shot(page, f"list-{label}")
        page.goto(base + reverse("incidents:detail", args=[pk]))
        page.wait_for_load_state("networkidle")
        expect(page.get_by_text("rewrite_database").first).to_be_visible()
        _shot(page, f"incident-{label}")
    context.close()


def test_the_demo_approver_approves_the_waiting_action_and_sees_it_run(
    chromium,  # noqa: F811
    live_server,
    settings,
    tmp_path,
    monkeypatch,
):
    import os

    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    if connection.vendor != "sqlite":
        pytest.skip("the demo's story is told on the embedded default (SQLite)")
    settings.SITE_URL = live_server.url  # the demo's health target is this very server
    settings.DATA_DIR = tmp_path
    settings.ANTHROPIC_API_KEY = ""
    # The test database lives in memory; `make run`'s is a file, which the demo's
    # database target names. A file copy of this one stands in for it.
    app_db = tmp_path / "db.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(app_db) as copy:
        connection.connection.backup(copy)
    monkeypatch.setitem(connection.settings_dict, "NAME", str(app_db))
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    monkeypatch.undo()
    password = (tmp_path / "demo-password.txt").read_text().strip()
    assert f"password: {password}" in out.getvalue()

    queued = ActionRequest.objects.filter(status=ActionStatus.AWAITING_APPROVAL)
    waiting = queued.get(safety=Safety.DESTRUCTIVE)
    assert (waiting.action, waiting.target) == ("database.vacuum", "app-db")
    assert waiting.approval_reason.startswith("destructive action")
    User = get_user_model()
    alice, bob = User.objects.get(username="alice"), User.objects.get(username="bob")
    assert not may_approve(alice, waiting) and may_approve(bob, waiting)
    # alice acts on incidents and edits postmortems; bob reviews and publishes them.
    assert is_responder(alice) and may_edit_postmortem(alice)
    assert may_publish_postmortem(bob) and not may_publish_postmortem(alice)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The demo as alice, the responder, sees it: the list and the waiting incident.
    _pages_as(chromium, live_server.url, "alice", password, waiting.incident_id)

    context = chromium.new_context(viewport=DESKTOP)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "bob")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    n = queued.count()
    expect(page.locator("#approval-queue-summary")).to_contain_text(f"{n} action request")

    page.goto(live_server.url + reverse("admin:executor_actionrequest_changelist"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(n)
    row = rows.filter(has_text="rewrite_database")
    expect(row).to_contain_text("Timeline page slow")
    expect(row).to_contain_text("destructive")
    # Every column in view at laptop widths, without scrolling sideways.
    for width in (1366, 1400):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"demo-queue-{width}.png"), full_page=True)
        if width == DESKTOP["width"] and os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
            page.screenshot(path=str(DOCS / "queue-desktop.png"), full_page=True)
        status = row.locator("td.field-status_display")
        expect(status).to_contain_text("Awaiting approval")
        box = status.bounding_box()
        assert box and box["x"] + box["width"] <= width, (width, box)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(ARTIFACTS / "demo-queue.png"), full_page=True)
    # On a phone the approver still finds the request, its reason and its status.
    page.set_viewport_size(PHONE)
    expect(row).to_contain_text("Awaiting approval")
    for field in ("why", "waited", "expires_in", "status_display"):
        box = row.locator(f"td.field-{field}").bounding_box()
        assert box and box["x"] + box["width"] <= PHONE["width"], (field, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(page, "queue-phone")
    page.set_viewport_size(DESKTOP)

    page.click(f"a[href$='/executor/actionrequest/{waiting.pk}/change/']")
    expect(page.locator("#decision-panel")).to_contain_text("rewrite_database")
    expect(page.locator("#decision-panel")).to_contain_text("VACUUM")
    page.click("#approve-button")
    expect(page.locator("ul.messagelist")).to_contain_text("Approved.")
    waiting.refresh_from_db()
    assert waiting.status == ActionStatus.SUCCEEDED, (waiting.error, waiting.result)
    expect(page.locator(".field-status_display")).to_contain_text("Succeeded")
    page.screenshot(path=str(ARTIFACTS / "demo-approved.png"), full_page=True)
    # The incident page's "Open for" counts up by itself.
    page.goto(live_server.url + reverse("incidents:detail", args=[waiting.incident_id]))
    open_for = page.locator("[data-open-since]")
    shown = open_for.inner_text()
    expect(open_for).not_to_have_text(shown, timeout=5_000)
    # The queue, once empty, says what it is for.
    for other in queued.exclude(pk=waiting.pk):
        action_request_reject(action_request=other, approver=bob, reason="not now (demo)")
    page.goto(live_server.url + reverse("admin:executor_actionrequest_changelist"))
    expect(page.locator("#queue-empty")).to_contain_text("This is the approval queue")
    context.close()

    waiting.refresh_from_db()
    assert waiting.status == ActionStatus.SUCCEEDED
    assert waiting.result["summary"].startswith("Rewrote the database of target app-db")
