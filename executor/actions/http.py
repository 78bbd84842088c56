"""HTTP health checks: status and latency of a service's health URL."""

from typing import Any

from executor.actions import seed_params
from executor.choices import Safety, StepKind
from executor.connectors import http as hconn
from executor.registry import register
from executor.results import StepBlocked, StepResult
from executor.targets import redact_url

BODY_EXCERPT_CHARS = 300


@register(
    name="http.health_check",
    kind=StepKind.CHECK,
    safety=Safety.READ_ONLY,
    description="GET the target's health URL (plus an optional path) and report status and latency.",
    params={
        "type": "object",
        "properties": {
            # No "." or ".." segments: the path stays under the target's URL.
            "path": {
                "type": "string",
                "pattern": r"^(?!.*/\.\.?(/|$))(/[A-Za-z0-9._~\-]*)*$(?!\n)",
                "maxLength": 200,
            },
            "expect_status": {"type": "integer", "minimum": 100, "maximum": 599},
            "max_latency_ms": {"type": "integer", "minimum": 1, "maximum": 60_000},
        },
    },
    targets=("http",),
    normalize=seed_params.health_url,
)
class HealthCheck:
    def plan(self, params: dict, target: Any) -> str:
        path = params.get("path", "")
        where = (
            redact_url(hconn.join(target.url, path))
            if target is not None and target.url
            else f"the target's health URL{' + ' + path if path else ''}"
        )
        expect = params.get("expect_status", 200)
        limit = params.get("max_latency_ms")
        return (
            f"GET {where}; expect status {expect}"
            + (f" within {limit} ms" if limit else "")
            + ". Read-only; redirects followed only on the same host."
        )

    def run(self, params: dict, target: Any, deadline: float) -> StepResult:
        if target is None or target.kind != "http":
            raise StepBlocked("this step needs an http target")
        url = hconn.join(hconn.target_url(target), params.get("path", ""))
        expect = int(params.get("expect_status", 200))
        max_latency = params.get("max_latency_ms")
        headers = hconn.bearer(target)
        shown = redact_url(url)
        got = hconn.get(url, deadline=deadline, headers=headers, what=f"{target.name} ({shown})")
        excerpt = " ".join(got["body"].split())[:BODY_EXCERPT_CHARS]
        problems = []
        if got["status"] != expect:
            problems.append(f"expected {expect}")
        if max_latency is not None and got["latency_ms"] > max_latency:
            problems.append(f"slower than {max_latency} ms")
        skipped = [h for h in got["redirects"] if not h["followed"]]
        if skipped:
            problems.append(f"redirect to another host not followed ({skipped[-1]['to']})")
        summary = f"GET {shown} → {got['status']} in {got['latency_ms']:.0f} ms"
        if problems:
            summary += " (" + "; ".join(problems) + ")"
        data = {
            "url": got["url"],
            "status": got["status"],
            "expect_status": expect,
            "latency_ms": got["latency_ms"],
            "max_latency_ms": max_latency,
            "content_type": got["content_type"],
            "body_excerpt": excerpt,
            "redirects": got["redirects"],
        }
        return StepResult(
            outcome="warn" if problems else "ok",
            summary=summary,
            data=data,
            text=f"{summary}\n{excerpt}",
        )
