"""Service lifecycle on Fly.io: restart machines, scale a process group, roll back the image.

All three go through the Machines API (executor.connectors.fly), touch one
machine at a time and stop at the first failure: a fleet is never bounced
further once something went wrong. Their plans list every machine they would
touch and how.
"""

import time
from collections.abc import Callable
from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import fly
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult, StepTimeout

PLAN_SECONDS = 5.0
# The connector's patterns, as JSON Schema patterns (see actions/params.py for `$(?!\n)`).
MACHINE_ID_PATTERN = rf"^{fly.MACHINE_RE.pattern}$(?!\n)"
PROCESS_GROUP_PATTERN = rf"^{fly.PROCESS_GROUP_RE.pattern}$(?!\n)"
# Started or on the way there: counted as running.
RUNNING = ("started", "starting")
# States a start request brings back.
STARTABLE = ("stopped", "suspended", "created")


def _one_at_a_time(
    steps: list[tuple[str, Callable[[], Any]]],
) -> tuple[list[str], dict | None]:
    """Run each (machine id, call) in order; stop at the first failure.

    The first failure before anything was done is raised as it is; after that,
    it is returned as {"id", "error"} with the ids done so far. A timeout is
    always raised, naming what was done before it.
    """
    done: list[str] = []
    for machine_id, call in steps:
        try:
            call()
        except StepTimeout as exc:
            raise StepTimeout(
                f"{exc} (done before the deadline: {', '.join(done) or 'none'})"
            ) from exc
        except StepError as exc:
            if not done:
                raise
            return done, {"id": machine_id, "error": str(exc)}
        done.append(machine_id)
    return done, None


def _plan_target(target: Any, verb: str) -> tuple[str, str] | str:
    """(api base, app) or a readable line saying why the target cannot be used."""
    if target is None or target.kind != "fly":
        return f"Would {verb} on the service's Fly app (no target resolved)."
    try:
        return fly.api(target)
    except StepBlocked as exc:
        return f"Would {verb} on target {target.name}; the target is not usable: {exc}"


def _process_group(params: dict) -> str:
    group = params.get("process_group") or ""
    if group and not fly.PROCESS_GROUP_RE.fullmatch(group):
        raise StepBlocked(f"refused process group {group[:40]!r}")
    return group


def _machine_line(m: dict, change: str = "") -> str:
    group = f" [{m['process_group']}]" if m.get("process_group") else ""
    where = " ".join(x for x in (m.get("name") or "", m.get("region") or "") if x)
    return f"  {m['id']}{group} {where} ({m.get('state')}{change})".replace("  (", " (")


@register(
    name="service.restart",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Restart the machines of a Fly.io app (all, or the listed machine ids).",
    params={
        "type": "object",
        "properties": {
            "machine_ids": {
                "type": "array",
                "items": {"type": "string", "pattern": MACHINE_ID_PATTERN},
                "maxItems": 50,
                "uniqueItems": True,
            },
        },
    },
    targets=("fly",),
    normalize=seed_params.restart_service,
)
class ServiceRestart:
    def plan(self, params: dict, target: Any) -> str:
        ids = list(params.get("machine_ids") or [])
        which = f"machines {', '.join(ids)}" if ids else "every machine"
        resolved = _plan_target(target, f"restart {which}")
        if isinstance(resolved, str):
            return resolved
        base, app = resolved
        head = (
            f"Would restart {which} of Fly app {app} via {base} (target {target.name}), "
            "one at a time, stopping at the first failure."
        )
        try:
            machines = fly.list_machines(target, deadline=time.monotonic() + PLAN_SECONDS)
        except (StepError, StepBlocked) as exc:
            return f"{head}\nCannot list the app's machines now: {exc}"
        by_id = {m["id"]: m for m in machines}
        chosen = [by_id.get(i, {"id": i, "state": "not found in the app"}) for i in ids] or machines
        lines = [_machine_line(m) for m in chosen]
        return "\n".join([head] + (lines or ["  (the app has no machines)"]))

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        base, app = fly.api(target)
        ids = list(params.get("machine_ids") or [])
        if not ids:
            ids = [m["id"] for m in fly.list_machines(target, deadline=deadline)]
        if not ids:
            return StepResult(
                outcome="warn",
                summary=f"Fly app {app} has no machines; nothing restarted",
                data={"app": app, "restarted": [], "failed": None},
            )
        restarted, failed = _one_at_a_time(
            [(i, lambda i=i: fly.restart(target, i, deadline=deadline)) for i in ids]
        )
        summary = f"Restarted {len(restarted)} of {len(ids)} machines of Fly app {app}"
        if failed:
            summary += f"; {failed['id']} failed, stopped there"
        return StepResult(
            outcome="warn" if failed else "ok",
            summary=summary,
            data={"app": app, "api": base, "restarted": restarted, "failed": failed},
            text="\n".join(f"restarted {m}" for m in restarted)
            + (f"\nfailed {failed['id']}: {failed['error']}" if failed else ""),
        )


# --- service.scale ------------------------------------------------------------------


def _group(machines: list[dict], process_group: str) -> tuple[str, list[dict]]:
    """(group name, its machines). Without a name, the app must have one group only."""
    if process_group:
        return process_group, [m for m in machines if m["process_group"] == process_group]
    groups = sorted({m["process_group"] for m in machines})
    if len(groups) > 1:
        raise StepBlocked(
            "the app runs several process groups ("
            + ", ".join(g or "(none)" for g in groups)
            + "); name one in params.process_group"
        )
    return (groups[0] if groups else ""), machines


def scale_changes(machines: list[dict], count: int) -> dict:
    """Which machines to start or stop so that `count` of them run. No side effects.

    Existing machines only: stopped/suspended ones are started, running ones
    beyond the count are stopped (the lowest ids are kept). Nothing is created
    or destroyed, so a count above the group's size is reported as a shortfall.
    """
    running = sorted((m for m in machines if m["state"] in RUNNING), key=lambda m: m["id"])
    startable = sorted((m for m in machines if m["state"] in STARTABLE), key=lambda m: m["id"])
    others = [m for m in machines if m["state"] not in RUNNING + STARTABLE]
    to_start: list[dict] = []
    to_stop: list[dict] = []
    if count > len(running):
        to_start = startable[: count - len(running)]
    elif count < len(running):
        to_stop = running[count:]
    reachable = len(running) + len(to_start) - len(to_stop)
    return {
        "running": len(running),
        "start": to_start,
        "stop": to_stop,
        "left_alone": others,
        "reachable": reachable,
        "shortfall": max(0, count - reachable),
    }


SCALE_LIMITS = (
    "It starts and stops existing machines only: it does not create (clone) or destroy "
    "machines, and does not change auto-start/auto-stop settings, so the Fly proxy may "
    "start a stopped machine again when traffic arrives if auto-start is on."
)


@register(
    name="service.scale",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Set how many machines of a Fly.io app (or one process group) run, by "
    "starting stopped machines or stopping running ones. Never creates or destroys machines.",
    params={
        "type": "object",
        "required": ["count"],
        "properties": {
            "count": {"type": "integer", "minimum": 0, "maximum": 20},
            "process_group": {"type": "string", "pattern": PROCESS_GROUP_PATTERN},
        },
    },
    targets=("fly",),
)
class ServiceScale:
    def plan(self, params: dict, target: Any) -> str:
        count = params.get("count")
        group_name = params.get("process_group") or ""
        scope = f"process group {group_name}" if group_name else "the app"
        resolved = _plan_target(target, f"run {count} machines of {scope}")
        if isinstance(resolved, str):
            return f"{resolved}\n{SCALE_LIMITS}"
        base, app = resolved
        head = f"Would make {count} machines of {scope} in Fly app {app} run (target {target.name}, {base})."
        try:
            machines = fly.list_machines(target, deadline=time.monotonic() + PLAN_SECONDS)
            group_name, group = _group(machines, group_name)
        except (StepError, StepBlocked) as exc:
            return f"{head}\nCannot work out the changes now: {exc}\n{SCALE_LIMITS}"
        changes = scale_changes(group, count)
        lines = [head, f"Now running: {changes['running']} of {len(group)} machines."]
        if not changes["start"] and not changes["stop"]:
            lines.append("No machine would change.")
        lines += [_machine_line(m, " → started") for m in changes["start"]]
        lines += [_machine_line(m, " → stopped") for m in changes["stop"]]
        lines += [_machine_line(m, ", left alone") for m in changes["left_alone"]]
        if changes["shortfall"]:
            lines.append(
                f"Only {changes['reachable']} can run: {changes['shortfall']} more would need "
                "new machines, which this step does not create."
            )
        lines.append(SCALE_LIMITS)
        return "\n".join(lines)

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        base, app = fly.api(target)
        count = params["count"]
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 20:
            raise StepBlocked(f"refused count {count!r}")
        group_name = _process_group(params)
        group_name, group = _group(fly.list_machines(target, deadline=deadline), group_name)
        changes = scale_changes(group, count)
        steps = [
            (m["id"], lambda i=m["id"]: fly.start(target, i, deadline=deadline))
            for m in changes["start"]
        ] + [
            (m["id"], lambda i=m["id"]: fly.stop(target, i, deadline=deadline))
            for m in changes["stop"]
        ]
        done, failed = _one_at_a_time(steps)
        started = [m["id"] for m in changes["start"] if m["id"] in done]
        stopped = [m["id"] for m in changes["stop"] if m["id"] in done]
        now = changes["running"] + len(started) - len(stopped)
        scope = f"process group {group_name} of Fly app {app}" if group_name else f"Fly app {app}"
        summary = f"{now} of {len(group)} machines of {scope} run (asked for {count})"
        if started:
            summary += f"; started {len(started)}"
        if stopped:
            summary += f"; stopped {len(stopped)}"
        if failed:
            summary += f"; {failed['id']} failed, stopped there"
        elif changes["shortfall"]:
            summary += f"; {changes['shortfall']} more would need new machines (not created)"
        return StepResult(
            outcome="warn" if failed or changes["shortfall"] else "ok",
            summary=summary,
            data={
                "app": app,
                "api": base,
                "process_group": group_name or None,
                "count": count,
                "running_before": changes["running"],
                "running_after": now,
                "started": started,
                "stopped": stopped,
                "shortfall": changes["shortfall"],
                "failed": failed,
            },
            text="\n".join(
                [f"started {i}" for i in started]
                + [f"stopped {i}" for i in stopped]
                + ([f"failed {failed['id']}: {failed['error']}"] if failed else [])
            ),
        )


# --- deploy.rollback ----------------------------------------------------------------


def _rollback_image(params: dict, target: Any) -> tuple[str, str]:
    """(image, where it came from): params.image, else the target's `previous_image` option."""
    image = params.get("image") or ""
    source = "params.image"
    if not image:
        image = (getattr(target, "options", None) or {}).get("previous_image") or ""
        source = f"target {target.name} option previous_image"
    if not image:
        raise StepBlocked(
            "no image to roll back to: give params.image, or set the Fly target's "
            "previous_image option after each deploy"
        )
    if fly.parse_image(image) is None:
        raise StepBlocked(f"refused image reference {str(image)[:80]!r} (from {source})")
    return image, source


def rollback_changes(machines: list[dict], image: str) -> dict:
    """Which machines would be re-imaged, and the safety check on repositories. No side effects.

    The rollback image must live in the same registry repository as every
    machine's current image: a rollback never switches a service to someone
    else's image.
    """
    wanted = fly.parse_image(image)
    change, same, refused = [], [], []
    for m in machines:
        current = fly.parse_image(m.get("image"))
        if m["image"] == image:
            same.append(m)
        elif current is None or wanted is None:
            refused.append((m, "its current image is not a reference this step understands"))
        elif (current["registry"], current["repository"]) != (
            wanted["registry"],
            wanted["repository"],
        ):
            refused.append(
                (m, f"runs {current['registry']}/{current['repository']}, a different repository")
            )
        else:
            change.append(m)
    return {"change": change, "same": same, "refused": refused}


ROLLBACK_LIMITS = (
    "It updates each machine's config.image through the Machines API (the rest of the "
    "config is kept); it does not create a Fly release, does not wait for health checks "
    "(run http.health_check afterwards), and the next `fly deploy` replaces it."
)


@register(
    name="deploy.rollback",
    kind=StepKind.ACTION,
    safety=Safety.DESTRUCTIVE,
    description="Redeploy the previous release image on the machines of a Fly.io app (or one "
    "process group). The image comes from params.image or the target's previous_image option "
    "and must be in the same registry repository as the current image.",
    params={
        "type": "object",
        "properties": {
            "image": {
                "type": "string",
                "maxLength": 400,
                "pattern": fly.IMAGE_PATTERN,
                "description": "Full image reference, e.g. registry.fly.io/my-app:deployment-01H…",
            },
            "process_group": {"type": "string", "pattern": PROCESS_GROUP_PATTERN},
        },
    },
    targets=("fly",),
)
class DeployRollback:
    def plan(self, params: dict, target: Any) -> str:
        group_name = params.get("process_group") or ""
        scope = f"process group {group_name}" if group_name else "every machine"
        resolved = _plan_target(target, f"roll back {scope}")
        if isinstance(resolved, str):
            return f"{resolved}\n{ROLLBACK_LIMITS}"
        base, app = resolved
        try:
            image, source = _rollback_image(params, target)
        except StepBlocked as exc:
            return f"Cannot roll back Fly app {app}: {exc}"
        try:
            machines = fly.list_machines(target, deadline=time.monotonic() + PLAN_SECONDS)
        except (StepError, StepBlocked) as exc:
            return f"Would roll back Fly app {app} to {image}.\nCannot list the machines now: {exc}"
        if group_name:
            machines = [m for m in machines if m["process_group"] == group_name]
        changes = rollback_changes(machines, image)
        current = sorted({m["image"] for m in changes["change"]})
        lines = [
            f"Would roll back {scope} of Fly app {app} via {base} (target {target.name}) "
            f"from {', '.join(current) or '(nothing to change)'} to {image} ({source}), "
            "one machine at a time, stopping at the first failure."
        ]
        lines += [_machine_line(m, f", {m['image']} → {image}") for m in changes["change"]]
        lines += [_machine_line(m, ", already on that image") for m in changes["same"]]
        lines += [_machine_line(m, f", refused: {why}") for m, why in changes["refused"]]
        if changes["refused"]:
            lines.append("The step would be refused: every machine must be in the same repository.")
        if not machines:
            lines.append("  (no machines)")
        lines.append(ROLLBACK_LIMITS)
        return "\n".join(lines)

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        base, app = fly.api(target)
        image, source = _rollback_image(params, target)
        group_name = _process_group(params)
        machines = fly.list_machines(target, deadline=deadline)
        if group_name:
            machines = [m for m in machines if m["process_group"] == group_name]
        changes = rollback_changes(machines, image)
        if changes["refused"]:
            m, why = changes["refused"][0]
            raise StepBlocked(f"machine {m['id']} {why}; nothing was rolled back")
        if not changes["change"]:
            return StepResult(
                outcome="warn",
                summary=f"Nothing to roll back: no machine of Fly app {app} needs {image}",
                data={"app": app, "image": image, "updated": [], "failed": None},
            )
        previous = {m["id"]: m["image"] for m in changes["change"]}
        updated, failed = _one_at_a_time(
            [
                (m["id"], lambda i=m["id"]: fly.update_image(target, i, image, deadline=deadline))
                for m in changes["change"]
            ]
        )
        summary = (
            f"Rolled back {len(updated)} of {len(changes['change'])} machines of Fly app {app} "
            f"to {image}"
        )
        if failed:
            summary += f"; {failed['id']} failed, stopped there"
        return StepResult(
            outcome="warn" if failed else "ok",
            summary=summary,
            data={
                "app": app,
                "api": base,
                "image": image,
                "image_source": source,
                "previous_images": sorted(set(previous.values())),
                "updated": updated,
                "unchanged": [m["id"] for m in changes["same"]],
                "failed": failed,
            },
            text="\n".join(f"{i}: {previous[i]} → {image}" for i in updated)
            + (f"\nfailed {failed['id']}: {failed['error']}" if failed else ""),
        )
