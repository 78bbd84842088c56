"""Change webhooks: GitHub deployment_status / workflow_run and the generic change JSON."""

import copy
import json

import pytest

from incidents.choices import ChangeKind, ChangeStatus
from incidents.ingest.auth import signature_for
from incidents.models import Alert, ChangeEvent

from .ingest_helpers import HMAC_KEY, eager, make_source, payload, post, secrets  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secrets", "eager")]


def post_github(client, slug, body, event, *, key=HMAC_KEY, signature=None, raw=None):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"HTTP_X_GITHUB_EVENT": event} if event else {}
    sig = signature if signature is not None else signature_for(key.encode(), data)
    if sig:
        headers["HTTP_X_HUB_SIGNATURE_256"] = sig
    return client.post(f"/hooks/{slug}/", data=data, content_type="application/json", **headers)


@pytest.fixture
def github():
    return make_source("github", auth_mode="hmac", secret_env="HOOK_HMAC")


def test_deployment_status_records_a_deploy(client, github):
    response = post_github(
        client, "github", payload("github/deployment_status.json"), "deployment_status"
    )
    assert response.status_code == 202, response.content
    change = ChangeEvent.objects.get()
    assert change.kind == ChangeKind.DEPLOY and change.status == ChangeStatus.SUCCEEDED
    assert change.service == "Hello-World" and change.version == "master"
    assert change.author == "Codertocat" and change.origin == "github"
    assert change.link == "https://github.com/Codertocat/Hello-World/actions/runs/1"
    assert change.started_at.isoformat() == "2019-05-15T15:20:53+00:00"
    assert response.json()["changes"] == [change.pk]
    assert not Alert.objects.exists()


def test_redelivery_updates_and_the_next_deploy_names_the_previous_version(client, github):
    body = payload("github/deployment_status.json")
    body["deployment"]["payload"] = {"service": "checkout", "version": "v2.13"}
    post_github(client, "github", body, "deployment_status")
    post_github(client, "github", body, "deployment_status")
    assert ChangeEvent.objects.count() == 1
    later = copy.deepcopy(body)
    later["deployment"].update(id=326191729, created_at="2019-05-16T10:00:00Z")
    later["deployment"]["payload"]["version"] = "v2.14"
    post_github(client, "github", later, "deployment_status")
    newest = ChangeEvent.objects.get(external_id="deployment:326191729")
    assert (newest.service, newest.version, newest.previous_version) == (
        "checkout",
        "v2.14",
        "v2.13",
    )


def test_workflow_run_of_a_deploy_workflow_is_a_change_and_others_are_ignored(client, github):
    body = payload("github/workflow_run.json")
    assert post_github(client, "github", body, "workflow_run").status_code == 202
    change = ChangeEvent.objects.get()
    assert change.version == "acb5820ced94" and change.service == "octo-repo"
    assert change.finished_at is not None and change.author == "octocat"
    tests = copy.deepcopy(body)
    tests["workflow_run"].update(id=1, name="CI", path=".github/workflows/ci.yml")
    tests["workflow"].update(name="CI", path=".github/workflows/ci.yml")
    response = post_github(client, "github", tests, "workflow_run")
    assert response.status_code == 202 and response.json()["ignored"] == 1
    assert ChangeEvent.objects.count() == 1


def test_github_refuses_unsigned_badly_signed_and_broken_deliveries(client, github):
    body = payload("github/deployment_status.json")
    unsigned = post_github(client, "github", body, "deployment_status", signature="")
    assert unsigned.status_code == 401 and "signature" in unsigned.json()["message"]
    # A bearer token is no way in: GitHub only signs.
    assert post(client, "github", body).status_code == 401
    bad = post_github(client, "github", body, "deployment_status", key="other")
    assert bad.status_code == 401
    no_event = post_github(client, "github", body, "")
    assert no_event.status_code == 422 and "X-GitHub-Event" in no_event.json()["message"]
    broken = copy.deepcopy(body)
    broken["deployment_status"]["state"] = "exploded"
    response = post_github(client, "github", broken, "deployment_status")
    assert response.status_code == 422 and "state" in response.json()["message"]
    del broken["deployment"]
    assert post_github(client, "github", broken, "deployment_status").status_code == 422
    assert not ChangeEvent.objects.exists()


GENERIC = {
    "service": "checkout",
    "kind": "config",
    "version": "flags-42",
    "author": "alice",
    "started_at": "2026-11-30T02:05:00Z",
    "link": "https://git.example.com/c/42",
}


def test_generic_change_json(client):
    make_source("change")
    response = post(client, "change", [GENERIC, {**GENERIC, "kind": "feature_flag", "id": "f1"}])
    assert response.status_code == 202, response.content
    assert sorted(ChangeEvent.objects.values_list("kind", flat=True)) == ["config", "feature_flag"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({**GENERIC, "kind": "earthquake"}, "kind must be one of"),
        ({k: v for k, v in GENERIC.items() if k != "started_at"}, "started_at is required"),
        ({**GENERIC, "service": ""}, "service is required"),
        ({**GENERIC, "link": "javascript:alert(1)"}, "link must be an http(s) URL"),
        ({**GENERIC, "status": "maybe"}, "status must be one of"),
    ],
)
def test_broken_generic_changes_store_nothing(client, change, reason):
    make_source("change")
    # One broken change in a batch refuses the whole delivery.
    response = post(client, "change", [GENERIC, change])
    assert response.status_code == 422 and reason in response.json()["message"]
    assert not ChangeEvent.objects.exists()
