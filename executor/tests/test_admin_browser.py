"""An approver works the queue in headless Chromium: approve one request, reject another.

Keeps screenshots of the queue in test-artifacts/ and docs/admin-queue.png.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.urls import reverse

from executor.choices import ActionStatus, Decision
from executor.models import ActionRequest, Approval
from incidents.tests.factories import UserFactory
from testing.services import ROOT, need_service

from .approval_helpers import fly_target, make_approver, pending_requests, step

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_slack_notifications"),
]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        need_service("Chromium", f"{CHROMIUM} is missing (Debian package chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        need_service("Chromium", "Python Playwright is not installed")
    return CHROMIUM


@pytest.fixture
def fly(settings, monkeypatch):
    with fly_target(settings, monkeypatch, ["148e21ea", "3d8d9ee1", "91c4e2a7"]) as fake:
        yield fake


def test_an_approver_approves_and_rejects_from_the_admin(
    live_server, chromium_path, monkeypatch, fly
):
    from playwright.sync_api import expect, sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are ours.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    restart = pending_requests(
        step("restart_api", "service.restart", safe=True),
        severity="SEV1",
        title="Checkout API returns 502 for most requests",
    )["restart_api"]
    approve_me = pending_requests(
        step("notify_support", "alert.notify", message="Checkout is degraded; status page updated"),
        severity="SEV2",
        title="Payment confirmations delayed",
    )["notify_support"]
    reject_me = pending_requests(
        step("notify_all", "alert.notify", message="Everyone: drop what you are doing"),
        severity="SEV3",
        title="Slow search results",
    )["notify_all"]
    oncall = UserFactory(username="oncall-alex")
    ActionRequest.objects.filter(pk=approve_me.pk).update(requested_by=oncall)
    approver = make_approver("approver-sam", staff=True)
    approver.set_password("pw-for-tests-only")
    approver.save()

    ARTIFACTS.mkdir(exist_ok=True)
    queue_url = live_server.url + reverse("admin:executor_actionrequest_changelist")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1760, "height": 1000})
        page.set_default_timeout(20_000)

        page.goto(live_server.url + reverse("admin:login"))
        page.fill("#id_username", "approver-sam")
        page.fill("#id_password", "pw-for-tests-only")
        page.click("input[type=submit]")
        expect(page.locator("#approval-queue-summary")).to_contain_text(
            "3 action requests wait for a decision"
        )

        page.goto(queue_url)
        page.click("#toggle-nav-sidebar")  # more room for the plans
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(3)
        # Most severe first.
        expect(rows.nth(0)).to_contain_text("restart_api")
        expect(rows.nth(0)).to_contain_text("148e21ea")  # the dry-run plan lists the machines
        page.screenshot(path=str(ARTIFACTS / "admin-queue.png"), full_page=True)

        # Approve from the detail page.
        page.click(f"a[href$='/executor/actionrequest/{approve_me.pk}/change/']")
        expect(page.locator("#decision-panel")).to_contain_text("notify_support")
        page.click("#approve-button")
        expect(page.locator("ul.messagelist")).to_contain_text("Approved.")
        expect(page.locator(".field-status_display")).to_contain_text("Succeeded")

        # Reject from the list, with a reason on the intermediate page.
        page.goto(queue_url)
        page.check(f"input[name=_selected_action][value='{reject_me.pk}']")
        page.select_option("select[name=action]", "reject_selected")
        page.click("button[name=index]")
        expect(page.locator("h1")).to_contain_text("Reject action requests")
        page.fill("#id_reason", "Too broad: page only the search on-call")
        page.click("#confirm-reject")
        expect(page.locator("ul.messagelist")).to_contain_text(
            f"Rejected: #{reject_me.pk} notify_all"
        )
        expect(rows).to_have_count(1)  # only the SEV1 restart still waits

        page.goto(queue_url + "?status=all")
        expect(rows).to_have_count(3)
        page.screenshot(path=str(ARTIFACTS / "admin-queue-after.png"), full_page=True)
        browser.close()

    approve_me.refresh_from_db()
    reject_me.refresh_from_db()
    restart.refresh_from_db()
    assert approve_me.status == ActionStatus.SUCCEEDED
    assert reject_me.status == ActionStatus.REJECTED
    assert restart.status == ActionStatus.AWAITING_APPROVAL
    assert fly.restarts == []  # nobody approved the restart: nothing was restarted
    rejection = Approval.objects.get(action_request=reject_me)
    assert rejection.decision == Decision.REJECT
    assert rejection.reason == "Too broad: page only the search on-call"
    assert Approval.objects.get(action_request=approve_me).approver == approver

    assert os.path.getsize(ARTIFACTS / "admin-queue.png") > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):  # refresh the README's picture on request
        shutil.copyfile(ARTIFACTS / "admin-queue.png", ROOT / "docs" / "admin-queue.png")
