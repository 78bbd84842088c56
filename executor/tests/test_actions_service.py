"""service.restart, service.scale and deploy.rollback against a local Fly Machines API.

The fake speaks the documented shapes (fly.io/docs/machines/api/machines-resource/,
working-with-machines-api/) and checks every request against them:
- GET  /v1/apps/{app}/machines                 list (machines with config, image_ref, instance_id)
- GET  /v1/apps/{app}/machines/{id}            one machine
- POST /v1/apps/{app}/machines/{id}            update: a JSON body with the *whole* config
- POST /v1/apps/{app}/machines/{id}/start|stop|restart   no body (stop: optional signal/timeout)
All need `Authorization: Bearer <token>` (else 401); unknown apps and machines
are 404; errors are JSON {"error": "..."}. Tests script error answers (429 with
Retry-After, 5xx, 412) per action and machine.
"""

import copy
import json
import time
from collections.abc import Iterator

import pytest

from executor.connectors import fly
from executor.connectors import http as hconn
from executor.policy import approval_reason
from executor.registry import REGISTRY
from executor.results import StepBlocked, StepError, StepTimeout
from executor.targets import ResolvedTarget
from testing.fakes.fly import APP, NEW_IMAGE, OLD_IMAGE, TOKEN, FakeFly, fly_server
from testing.services import free_port

RESTART = REGISTRY["service.restart"]
SCALE = REGISTRY["service.scale"]
ROLLBACK = REGISTRY["deploy.rollback"]


@pytest.fixture
def flyapi(monkeypatch) -> Iterator[FakeFly]:
    monkeypatch.setenv("IR_TEST_FLY_TOKEN", TOKEN)
    with fly_server() as fake:
        yield fake


def target_for(fake: FakeFly, **options) -> ResolvedTarget:
    return ResolvedTarget(
        "fly",
        "fly",
        f"{fake.base}/v1/apps/{APP}",
        secret_env="IR_TEST_FLY_TOKEN",
        options=options,
    )


def run(spec, params: dict, target: ResolvedTarget, seconds: float = 5):
    assert spec.validate_params(params) == []
    result = spec.run(params, target, time.monotonic() + seconds)
    blob = result.summary + result.text + json.dumps(result.data)
    assert TOKEN not in blob
    return result


def ids(fake: FakeFly, group: str | None = None) -> list[str]:
    return [
        m["id"]
        for m in fake.machines
        if group is None or m["config"]["metadata"]["fly_process_group"] == group
    ]


# --- service.restart ----------------------------------------------------------------


def test_plan_lists_the_machines_and_restarts_nothing(flyapi):
    plan = RESTART.plan({}, target_for(flyapi))
    assert f"Fly app {APP}" in plan
    for m in flyapi.machines:
        assert m["id"] in plan and m["state"] in plan
    assert [r[0] for r in flyapi.requests] == ["GET"]
    assert TOKEN not in plan
    chosen = RESTART.plan({"machine_ids": ["148ed123a0e189", "aaaaaaaaaaaa"]}, target_for(flyapi))
    assert "148ed123a0e189" in chosen and "not found in the app" in chosen
    assert "d8d9871b0e4689" not in chosen


def test_restart_all_machines_one_at_a_time(flyapi):
    result = run(RESTART, {}, target_for(flyapi))
    assert result.outcome == "ok"
    assert flyapi.done == [("restart", i) for i in ids(flyapi)]
    assert result.data["restarted"] == ids(flyapi)
    assert result.summary == f"Restarted 5 of 5 machines of Fly app {APP}"
    # No body on restart, and every request carried the bearer token (else the fake says 401).
    assert all(body is None for method, _, _, body in flyapi.requests if method == "POST")


def test_a_failed_restart_stops_the_rest(flyapi):
    all_ids = ids(flyapi)
    flyapi.fail("restart", all_ids[1], 412)
    result = run(RESTART, {"machine_ids": all_ids}, target_for(flyapi))
    assert result.outcome == "warn"
    assert flyapi.done == [("restart", all_ids[0])]
    assert result.data["failed"]["id"] == all_ids[1]
    assert "412" in result.data["failed"]["error"]
    assert len(flyapi.posts()) == 2  # nothing was sent for the machines after the failure


def test_first_failure_is_an_error(flyapi):
    with pytest.raises(StepError, match="machine not found"):
        run(RESTART, {"machine_ids": ["aaaaaaaaaaaa"]}, target_for(flyapi))
    assert flyapi.done == []


def test_app_from_options_and_refusals(flyapi, monkeypatch):
    with_options = ResolvedTarget(
        "fly", "fly", flyapi.base, secret_env="IR_TEST_FLY_TOKEN", options={"app": APP}
    )
    assert run(RESTART, {"machine_ids": [ids(flyapi)[0]]}, with_options).outcome == "ok"

    no_app = ResolvedTarget("fly", "fly", flyapi.base, secret_env="IR_TEST_FLY_TOKEN")
    with pytest.raises(StepBlocked, match="Fly app"):
        run(RESTART, {}, no_app)
    bad_app = ResolvedTarget(
        "fly", "fly", f"{flyapi.base}/v1/apps/Bad_App", secret_env="IR_TEST_FLY_TOKEN"
    )
    with pytest.raises(StepBlocked):
        run(RESTART, {}, bad_app)
    monkeypatch.delenv("IR_TEST_FLY_TOKEN")
    with pytest.raises(StepBlocked, match="token.*IR_TEST_FLY_TOKEN"):
        run(RESTART, {}, target_for(flyapi))


@pytest.mark.parametrize(
    "bad", ["../../apps/x", "ABCDEF123", "abc", "148ed123a0e189\n", "a b c d e f"]
)
def test_machine_ids_are_checked_by_schema_and_connector(flyapi, bad):
    assert RESTART.validate_params({"machine_ids": [bad]}) != []
    for call in (fly.restart, fly.start, fly.stop):
        with pytest.raises(StepBlocked):
            call(target_for(flyapi), bad, deadline=time.monotonic() + 5)
    with pytest.raises(StepBlocked):
        fly.update_image(target_for(flyapi), bad, OLD_IMAGE, deadline=time.monotonic() + 5)
    assert flyapi.requests == []


def test_unreachable_api_and_passed_deadline(flyapi):
    down = ResolvedTarget(
        "fly",
        "fly",
        f"http://127.0.0.1:{free_port()}/v1/apps/{APP}",
        secret_env="IR_TEST_FLY_TOKEN",
    )
    with pytest.raises(StepError) as info:
        run(RESTART, {}, down)
    assert not isinstance(info.value, StepTimeout)
    with pytest.raises(StepTimeout):
        RESTART.run({}, target_for(flyapi), time.monotonic() - 1)


def test_plan_without_a_target_is_readable():
    assert "every machine" in RESTART.plan({}, None)
    assert "abcdef123" in RESTART.plan({"machine_ids": ["abcdef123"]}, None)


# --- the documented error answers, for every verb -----------------------------------


def test_401_names_the_token_variable_never_the_token(flyapi, monkeypatch):
    monkeypatch.setenv("IR_TEST_FLY_TOKEN", "wrong-secret-value-77")
    for spec, params in ((RESTART, {}), (SCALE, {"count": 1, "process_group": "app"})):
        with pytest.raises(StepError) as info:
            spec.run(params, target_for(flyapi), time.monotonic() + 5)
        message = str(info.value)
        assert "401" in message and "IR_TEST_FLY_TOKEN" in message
        assert "wrong-secret-value-77" not in message
    assert flyapi.posts() == []  # the list was refused, so nothing was touched
    plan = ROLLBACK.plan({"image": OLD_IMAGE}, target_for(flyapi))
    assert "IR_TEST_FLY_TOKEN" in plan and "wrong-secret-value-77" not in plan


def test_404_for_an_unknown_app(flyapi):
    other = ResolvedTarget(
        "fly", "fly", f"{flyapi.base}/v1/apps/no-such-app", secret_env="IR_TEST_FLY_TOKEN"
    )
    with pytest.raises(StepError, match="404: app not found"):
        run(RESTART, {}, other)


def test_429_is_waited_out_when_retry_after_fits_the_deadline(flyapi):
    second = ids(flyapi)[1]
    flyapi.fail("restart", second, 429, Retry_After="1")
    result = run(RESTART, {}, target_for(flyapi))
    assert result.outcome == "ok"
    assert flyapi.done == [("restart", i) for i in ids(flyapi)]
    tries = [t for method, path, t, _ in flyapi.requests if path.endswith(f"{second}/restart")]
    assert len(tries) == 2 and tries[1] - tries[0] >= 0.95  # it waited as asked


def test_429_beyond_the_deadline_is_rate_limited_and_touches_nothing(flyapi):
    first = ids(flyapi)[0]
    flyapi.fail("restart", first, 429, Retry_After="30")
    started = time.monotonic()
    with pytest.raises(StepError, match="rate limited.*Retry-After 30s"):
        run(RESTART, {}, target_for(flyapi), seconds=5)
    assert time.monotonic() - started < 4  # it did not sleep into the deadline
    assert flyapi.posts() == [f"/v1/apps/{APP}/machines/{first}/restart"]
    assert flyapi.done == []


def test_429_on_every_attempt_gives_up_after_the_attempt_limit(flyapi):
    flyapi.fail("list", "*", 429, times=hconn.MAX_ATTEMPTS, Retry_After="0")
    with pytest.raises(StepError, match="rate limited"):
        run(SCALE, {"count": 1, "process_group": "app"}, target_for(flyapi))
    assert len(flyapi.requests) == hconn.MAX_ATTEMPTS and flyapi.posts() == []


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_stops_the_run_and_the_rest_is_untouched(flyapi, status):
    all_ids = ids(flyapi)
    flyapi.fail("restart", all_ids[0], status)
    with pytest.raises(StepError, match=f"server error {status}"):
        run(RESTART, {}, target_for(flyapi))
    assert flyapi.posts() == [
        f"/v1/apps/{APP}/machines/{all_ids[0]}/restart"
    ]  # sent once, no retry

    flyapi.requests.clear()
    flyapi.fail("restart", all_ids[2], status)
    result = run(RESTART, {}, target_for(flyapi))
    assert result.outcome == "warn" and result.data["restarted"] == all_ids[:2]
    assert f"server error {status}" in result.data["failed"]["error"]
    assert len(flyapi.posts()) == 3  # machines 4 and 5 untouched


# --- service.scale ------------------------------------------------------------------


def test_scale_schema():
    assert SCALE.validate_params({"count": 0}) == []
    assert SCALE.validate_params({"count": 20, "process_group": "app"}) == []
    for bad in (
        {},
        {"count": 21},
        {"count": -1},
        {"count": "3"},
        {"count": 2.5},
        {"count": 2, "process_group": "../x"},
        {"count": 2, "process_group": "app\n"},
        {"count": 2, "replicas": 3},
    ):
        assert SCALE.validate_params(bad) != [], bad
    assert approval_reason(SCALE.safety, marked_safe=True)  # destructive: always approved


def test_scale_plan_lists_the_machines_it_would_start(flyapi):
    plan = SCALE.plan({"count": 4, "process_group": "app"}, target_for(flyapi))
    assert "Now running: 2 of 4 machines." in plan
    assert "5683d920b1e948 [app] web-3 fra (stopped → started)" in plan
    assert "91852e6c0e2d38 [app] web-4 fra (suspended → started)" in plan
    assert "148ed123a0e189" not in plan and "3d8d413b29d089" not in plan
    assert "does not create (clone) or destroy" in plan
    assert flyapi.posts() == [] and TOKEN not in plan


def test_scale_up_starts_stopped_machines(flyapi):
    result = run(SCALE, {"count": 4, "process_group": "app"}, target_for(flyapi))
    assert result.outcome == "ok"
    assert flyapi.done == [("start", "5683d920b1e948"), ("start", "91852e6c0e2d38")]
    assert [m["state"] for m in flyapi.machines if m["id"] in ids(flyapi, "app")] == ["started"] * 4
    assert flyapi.by_id("3d8d413b29d089")["state"] == "stopped"  # the worker group is untouched
    assert result.data["running_before"] == 2 and result.data["running_after"] == 4
    assert all(body is None for method, _, _, body in flyapi.requests if method == "POST")


def test_scale_down_stops_the_highest_ids(flyapi):
    plan = SCALE.plan({"count": 1, "process_group": "app"}, target_for(flyapi))
    assert "d8d9871b0e4689 [app] web-2 ams (started → stopped)" in plan
    result = run(SCALE, {"count": 1, "process_group": "app"}, target_for(flyapi))
    assert flyapi.done == [("stop", "d8d9871b0e4689")]
    assert flyapi.by_id("148ed123a0e189")["state"] == "started"
    assert result.data["stopped"] == ["d8d9871b0e4689"] and result.outcome == "ok"


def test_scale_at_the_count_changes_nothing(flyapi):
    result = run(SCALE, {"count": 2, "process_group": "app"}, target_for(flyapi))
    assert result.outcome == "ok" and flyapi.posts() == []
    assert "No machine would change" in SCALE.plan(
        {"count": 2, "process_group": "app"}, target_for(flyapi)
    )


def test_scale_beyond_the_group_reports_the_shortfall(flyapi):
    result = run(SCALE, {"count": 6, "process_group": "app"}, target_for(flyapi))
    assert result.outcome == "warn"
    assert result.data["shortfall"] == 2 and result.data["running_after"] == 4
    assert "not created" in result.summary
    assert [a for a, _ in flyapi.done] == ["start", "start"]


def test_scale_needs_a_process_group_when_the_app_has_several(flyapi):
    with pytest.raises(StepBlocked, match="several process groups.*app, worker"):
        run(SCALE, {"count": 1}, target_for(flyapi))
    assert "name one in params.process_group" in SCALE.plan({"count": 1}, target_for(flyapi))
    assert flyapi.posts() == []
    flyapi.machines = [m for m in flyapi.machines if m["id"] in ids(flyapi, "app")]
    assert run(SCALE, {"count": 3}, target_for(flyapi)).data["started"] == ["5683d920b1e948"]


def test_scale_down_5xx_on_the_first_stop_leaves_the_rest(flyapi):
    flyapi.fail("stop", "148ed123a0e189", 503)
    with pytest.raises(StepError, match="server error 503"):
        run(SCALE, {"count": 0, "process_group": "app"}, target_for(flyapi))
    assert flyapi.posts() == [f"/v1/apps/{APP}/machines/148ed123a0e189/stop"]
    assert flyapi.by_id("d8d9871b0e4689")["state"] == "started"


# --- deploy.rollback ----------------------------------------------------------------


def test_rollback_schema_refuses_loose_image_references():
    assert ROLLBACK.validate_params({"image": OLD_IMAGE}) == []
    assert ROLLBACK.validate_params({"image": f"registry.fly.io/{APP}@sha256:{'a' * 64}"}) == []
    assert ROLLBACK.validate_params({}) == []  # then the target's previous_image option
    for bad in (
        f"{APP}:v1",  # no registry host
        f"registry.fly.io/{APP}",  # no tag or digest
        f"registry.fly.io/{APP}:v1\n",
        f"registry.fly.io/{APP}:v1 --force",
        f"registry.fly.io/../{APP}:v1",
        f"registry.fly.io/{APP}:v1?x=1",
        f"registry.fly.io/{APP}:v1#x",
        f"https://registry.fly.io/{APP}:v1",
        f"registry.fly.io/{APP}@sha256:short",
    ):
        assert ROLLBACK.validate_params({"image": bad}) != [], bad
        assert fly.parse_image(bad) is None, bad


def test_rollback_plan_names_both_images_and_everymachine(flyapi):
    plan = ROLLBACK.plan({"image": OLD_IMAGE, "process_group": "app"}, target_for(flyapi))
    assert f"from {NEW_IMAGE} to {OLD_IMAGE}" in plan
    for mid in ids(flyapi, "app"):
        assert f"{mid} [app]" in plan
    assert f"{NEW_IMAGE} → {OLD_IMAGE}" in plan
    assert "3d8d413b29d089" not in plan
    assert "does not wait for health checks" in plan
    assert flyapi.posts() == [] and TOKEN not in plan


def test_rollback_updates_each_machine_with_its_whole_config(flyapi):
    before = {m["id"]: copy.deepcopy(m) for m in flyapi.machines}
    result = run(ROLLBACK, {"image": OLD_IMAGE, "process_group": "app"}, target_for(flyapi))
    assert result.outcome == "ok"
    assert result.data["updated"] == ids(flyapi, "app")
    assert result.data["previous_images"] == [NEW_IMAGE]
    updates = [(p, b) for m, p, _, b in flyapi.requests if m == "POST"]
    assert [p for p, _ in updates] == [f"/v1/apps/{APP}/machines/{i}" for i in ids(flyapi, "app")]
    for path, body in updates:
        mid = path.rsplit("/", 1)[1]
        assert body["config"] == {**before[mid]["config"], "image": OLD_IMAGE}
        assert body["current_version"] == before[mid]["instance_id"]
        # A stopped or suspended machine is not booted by the rollback.
        assert body.get("skip_launch", False) is (before[mid]["state"] != "started")
    assert {m["config"]["image"] for m in flyapi.machines if m["id"] in ids(flyapi, "app")} == {
        OLD_IMAGE
    }
    assert flyapi.by_id("3d8d413b29d089")["config"]["image"] == NEW_IMAGE


def test_rollback_image_from_the_target_option_or_blocked(flyapi):
    result = run(
        ROLLBACK, {"process_group": "worker"}, target_for(flyapi, previous_image=OLD_IMAGE)
    )
    assert result.data["updated"] == ["3d8d413b29d089"]
    assert result.data["image_source"] == "target fly option previous_image"
    with pytest.raises(StepBlocked, match="no image to roll back to"):
        run(ROLLBACK, {}, target_for(flyapi))
    with pytest.raises(StepBlocked, match="refused image reference"):
        run(ROLLBACK, {}, target_for(flyapi, previous_image="evil image; rm"))
    assert "no image to roll back to" in ROLLBACK.plan({}, target_for(flyapi))


def test_rollback_never_switches_to_another_repository(flyapi):
    elsewhere = "registry.example.com/miner/xmrig:latest"
    assert ROLLBACK.validate_params({"image": elsewhere}) == []  # well-formed, but …
    with pytest.raises(StepBlocked, match="different repository"):
        run(ROLLBACK, {"image": elsewhere}, target_for(flyapi))
    assert "would be refused" in ROLLBACK.plan({"image": elsewhere}, target_for(flyapi))
    assert flyapi.posts() == []


def test_rollback_skips_machines_already_on_the_image(flyapi):
    flyapi.machines[0]["config"]["image"] = OLD_IMAGE
    result = run(ROLLBACK, {"image": OLD_IMAGE, "process_group": "app"}, target_for(flyapi))
    assert result.data["unchanged"] == [ids(flyapi)[0]]
    assert ids(flyapi)[0] not in result.data["updated"] and len(result.data["updated"]) == 3
    for m in flyapi.machines:
        m["config"]["image"] = OLD_IMAGE
    nothing = run(ROLLBACK, {"image": OLD_IMAGE}, target_for(flyapi))
    assert nothing.outcome == "warn" and nothing.data["updated"] == []


def test_rollback_5xx_stops_and_the_rest_keep_their_image(flyapi):
    app_ids = ids(flyapi, "app")
    flyapi.fail("update", app_ids[1], 500)
    result = run(ROLLBACK, {"image": OLD_IMAGE, "process_group": "app"}, target_for(flyapi))
    assert result.outcome == "warn"
    assert result.data["updated"] == app_ids[:1]
    assert result.data["failed"]["id"] == app_ids[1]
    assert "server error 500" in result.data["failed"]["error"]
    assert [flyapi.by_id(i)["config"]["image"] for i in app_ids] == [OLD_IMAGE] + [NEW_IMAGE] * 3
    # Nothing at all was sent for the machines after the failure, not even a read.
    assert not [p for _, p, _, _ in flyapi.requests if app_ids[2] in p or app_ids[3] in p]


def test_rollback_429_on_the_read_is_honoured(flyapi):
    first = ids(flyapi, "worker")[0]
    flyapi.fail("get", first, 429, Retry_After="0")
    result = run(ROLLBACK, {"image": OLD_IMAGE, "process_group": "worker"}, target_for(flyapi))
    assert result.outcome == "ok" and result.data["updated"] == [first]
    gets = [p for m, p, _, _ in flyapi.requests if m == "GET" and p.endswith(first)]
    assert len(gets) == 2


@pytest.mark.django_db
def test_a_catalog_target_may_give_just_the_app_name(flyapi):
    from executor.models import Target as TargetRow
    from executor.targets import configured_targets

    TargetRow.objects.create(
        name="billing-fly",
        kind="fly",
        base=APP,
        secret_env="IR_TEST_FLY_TOKEN",
        options={"api_url": flyapi.base},
    )
    target = configured_targets()["billing-fly"]
    assert fly.api(target) == (flyapi.base, APP)
    assert run(RESTART, {"machine_ids": [ids(flyapi)[0]]}, target).outcome == "ok"
    public = ResolvedTarget("p", "fly", APP, secret_env="IR_TEST_FLY_TOKEN")
    assert fly.api(public) == (fly.DEFAULT_API, APP)
    for bad in ("Bad_App", "../x", "billing-api/machines"):
        with pytest.raises(StepBlocked):
            fly.api(ResolvedTarget("p", "fly", bad))


def test_credentials_in_a_fly_url_are_refused_not_shown():
    target = ResolvedTarget("fly", "fly", "https://user:s3cret@api.machines.dev/v1/apps/myapp")
    plan = REGISTRY["service.restart"].plan({}, target)
    assert "s3cret" not in plan
    with pytest.raises(StepBlocked, match="secret variable"):
        REGISTRY["service.restart"].run({}, target, time.monotonic() + 2)
