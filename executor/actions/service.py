"""Service lifecycle on Fly.io: restart machines."""

import time
from typing import Any

from executor.choices import Safety, StepKind
from executor.connectors import fly
from executor.registry import register
from executor.results import StepBlocked, StepError, StepResult, StepTimeout

PLAN_SECONDS = 5.0


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
                "items": {"type": "string", "pattern": r"^[a-z0-9]{6,32}$(?!\n)"},
                "maxItems": 50,
                "uniqueItems": True,
            },
        },
    },
    targets=("fly",),
)
class ServiceRestart:
    def plan(self, params: dict, target: Any) -> str:
        ids = list(params.get("machine_ids") or [])
        which = f"machines {', '.join(ids)}" if ids else "every machine"
        if target is None or target.kind != "fly":
            return f"Would restart {which} of the service's Fly app (no target resolved)."
        try:
            base, app = fly.api(target)
        except StepBlocked as exc:
            return f"Would restart {which} on target {target.name}; the target is not usable: {exc}"
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
        lines = [
            f"  {m['id']} {m.get('name') or ''} {m.get('region') or ''} ({m.get('state')})".replace(
                "  (", " ("
            )
            for m in chosen
        ]
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
        restarted: list[str] = []
        failed = None
        for machine_id in ids:
            try:
                fly.restart(target, machine_id, deadline=deadline)
            except StepTimeout as exc:
                raise StepTimeout(
                    f"{exc} (restarted before the deadline: {', '.join(restarted) or 'none'})"
                ) from exc
            except StepError as exc:
                if not restarted:
                    raise
                failed = {"id": machine_id, "error": str(exc)}
                break  # do not keep bouncing the fleet when a restart fails
            restarted.append(machine_id)
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
