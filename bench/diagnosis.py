"""How often the offline diagnoser names the right root cause, on scenarios with known answers.

    uv run python bench/diagnosis.py [--verbose]

Each scenario has the incident text, its alerts, the change events, golden-signal
series and log lines, and the true root-cause category and component. The evidence
is built with the context stage's own algorithms (change-point detection on the
series, template mining of the lines against a baseline window, the changes'
timing) and handed to the offline diagnoser exactly as the planner gets it.

Printed per scenario and in total: category top-1 and top-3, component top-1, the
grade (100 right cause, 65 one hop short, 35 right area, 0 wrong) and the rate of
confident-and-wrong answers (top hypothesis wrong with confidence >= 0.7). A
scenario whose truth is "insufficient" is right when the diagnoser abstains.
"""

import argparse
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")

import django  # noqa: E402

django.setup()

from evidence.changepoint import detect  # noqa: E402
from evidence.templates import mine  # noqa: E402
from runbooks.generation.diagnosis import diagnose  # noqa: E402

CONFIDENT = 0.7
ONSET = 1_800_000_000.0  # a fixed instant: every series and line is relative to it
NEIGHBOURS = {  # one hop short: the cause next door
    "deployment_issue": {"code_bug", "configuration_error"},
    "code_bug": {"deployment_issue"},
    "configuration_error": {"deployment_issue"},
    "capacity_problem": {"dependency_failure", "external_factor"},
    "dependency_failure": {"capacity_problem", "external_factor"},
    "external_factor": {"dependency_failure", "capacity_problem"},
}


@dataclass
class Scenario:
    name: str
    text: str
    service: str
    category: str  # or "insufficient"
    component: str
    changes: list[tuple] = field(default_factory=list)  # (service, kind, min before, ver, prev)
    metrics: dict[str, tuple] = field(default_factory=dict)  # signal: (before, after, at_min)
    before: list[str] = field(default_factory=list)  # log lines in the baseline window
    after: list[str] = field(default_factory=list)  # log lines since onset
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (title, service)


def S(*args, **kw) -> Scenario:
    return Scenario(*args, **kw)


ERR, LAT, TRAF, SAT = "errors", "latency", "traffic", "saturation"
BASE_LOGS = ["GET /health 200 in 3 ms", "cache miss for key user:123"]

SCENARIOS = [
    # --- deployment issues -----------------------------------------------------------
    S("deploy-latency", "Checkout API p99 latency above 3s since 02:10, error rate 4%",
      "checkout", "deployment_issue", "checkout",
      changes=[("checkout", "deploy", 6, "v2.14", "v2.13")],
      metrics={LAT: (0.3, 3.2, -4), ERR: (0.1, 4.0, -4), TRAF: (100, 102, 0)},
      before=BASE_LOGS, after=["ERROR TypeError: cannot read properties of undefined (reading 'total')"] * 6),
    S("deploy-errors", "Search returning 500s", "search", "deployment_issue", "search",
      changes=[("search", "deploy", 3, "2024.05.1", "2024.04.9")],
      metrics={ERR: (0.2, 12.0, -1)}, after=["panic: nil pointer dereference in ranker.Score"] * 5),
    S("deploy-two-in-window", "Payments failing after the afternoon releases", "payments",
      "deployment_issue", "payments",
      changes=[("payments", "deploy", 95, "v5.1", "v5.0"), ("payments", "deploy", 4, "v5.2", "v5.1")],
      metrics={ERR: (0.5, 9.0, -2)}, after=["ERROR KeyError: 'currency' in charge handler"] * 4),
    S("deploy-no-logs", "Orders API slow", "orders", "deployment_issue", "orders",
      changes=[("orders", "deploy", 8, "v88", "v87")], metrics={LAT: (0.2, 1.9, -5)}),
    S("deploy-workflow", "Login page blank for many users", "web", "deployment_issue", "web",
      changes=[("web", "deploy", 12, "abc123def456", "0a1b2c3d4e5f")],
      metrics={ERR: (1.0, 20.0, -10)}, after=["Uncaught exception: undefined is not a function at bundle.js"] * 9),
    S("deploy-memory-leak", "Cart pods restarting", "cart", "deployment_issue", "cart",
      changes=[("cart", "deploy", 30, "v3.3", "v3.2")],
      metrics={ERR: (0.2, 3.0, -25), LAT: (0.2, 0.8, -25)},
      after=["ERROR unhandled exception in CartSerializer.to_json"] * 3),
    S("deploy-rollback-fails", "Notifications not sent since rollout", "notify", "deployment_issue", "notify",
      changes=[("notify", "deploy", 5, "v12", "v11")], metrics={ERR: (0.0, 3.0, -3)},
      after=["ERROR exception while rendering template welcome_email: missing variable"] * 4),
    # --- configuration errors ----------------------------------------------------------
    S("config-flag", "Checkout errors for EU customers", "checkout", "configuration_error", "checkout",
      changes=[("checkout", "feature_flag", 4, "eu-tax-v2=on", "")], metrics={ERR: (0.2, 6.0, -2)},
      after=["ERROR invalid value for tax region: EU-NEW"] * 5),
    S("config-cert", "API gateway TLS handshake failures", "gateway", "configuration_error", "gateway",
      changes=[("gateway", "config", 10, "tls-bundle-42", "tls-bundle-41")], metrics={ERR: (0.1, 30.0, -8)},
      after=["x509: certificate signed by unknown authority"] * 10),
    S("config-env", "Billing worker crashing at start", "billing", "configuration_error", "billing",
      changes=[("billing", "config", 3, "cfg-99", "cfg-98")], metrics={ERR: (0.0, 5.0, -2)},
      after=["FATAL missing env STRIPE_ENDPOINT: environment variable not set"] * 4),
    S("config-permission", "Uploads failing with access denied", "uploads", "configuration_error", "uploads",
      changes=[("uploads", "config", 15, "iam-7", "iam-6")], metrics={ERR: (0.3, 8.0, -14)},
      after=["ERROR access denied writing to bucket user-uploads: 403 Forbidden"] * 6),
    S("config-no-change-event", "Auth service rejecting tokens after settings edit",
      "auth", "configuration_error", "auth", metrics={ERR: (0.1, 15.0, 0)},
      after=["WARN configuration: invalid setting jwt.audience; unauthorized 401 for token"] * 8),
    S("config-flag-latency", "Recommendations slow after flag flip", "recs", "configuration_error", "recs",
      changes=[("recs", "feature_flag", 2, "model=v7", "model=v6")], metrics={LAT: (0.1, 0.9, -1)}),
    S("config-dns", "Email service cannot resolve SMTP relay after config push", "email",
      "configuration_error", "email", changes=[("email", "config", 7, "smtp-host", "")],
      metrics={ERR: (0.0, 4.0, -6)}, after=["dial tcp: lookup smtp-relay.internal: no such host"] * 5),
    # --- capacity problems ----------------------------------------------------------
    S("capacity-pool", "Checkout database connection pool exhausted, requests time out",
      "checkout", "capacity_problem", "checkout",
      metrics={SAT: (40, 100, -3), LAT: (0.2, 2.5, -3), TRAF: (100, 180, -5)},
      after=["ERROR pool exhausted: too many connections (max_connections=100)"] * 7),
    S("capacity-traffic-surge", "Homepage slow during the sale", "web", "capacity_problem", "web",
      metrics={TRAF: (200, 900, -2), LAT: (0.1, 1.4, -1), SAT: (50, 98, -1)},
      after=["WARN request queue full, load shedding"] * 5),
    S("capacity-disk", "Kafka broker stopped accepting writes", "kafka", "capacity_problem", "kafka",
      metrics={SAT: (70, 100, -10), ERR: (0.0, 50.0, -1)},
      after=["ERROR No space left on device writing segment 00000123.log"] * 3),
    S("capacity-oom", "Image resizer pods OOMKilled", "resizer", "capacity_problem", "resizer",
      metrics={SAT: (60, 99, -6)}, after=["container killed: OOMKilled (memory limit 512Mi)"] * 4),
    S("capacity-cpu", "Search latency high, CPU throttled", "search", "capacity_problem", "search",
      metrics={SAT: (45, 97, -4), LAT: (0.1, 0.7, -3)},
      after=["WARN cpu throttled for 850 ms in last period"] * 6),
    S("capacity-innocent-deploy", "API slow under heavy traffic", "api", "capacity_problem", "api",
      changes=[("api", "deploy", 240, "v9", "v8")],
      metrics={TRAF: (100, 400, -3), SAT: (40, 99, -2), LAT: (0.1, 1.1, -2)},
      after=["WARN worker saturated; rejected execution of request"] * 4),
    S("capacity-scale-down", "Queue backlog growing", "jobs", "capacity_problem", "jobs",
      changes=[("jobs", "scale", 9, "count=1", "count=4")], metrics={SAT: (30, 95, -6)},
      after=["WARN backlog 12000 messages, consumers overloaded"] * 4),
    # --- dependency failures ----------------------------------------------------------
    S("dep-db-down", "Orders failing: cannot reach database", "orders", "dependency_failure", "orders-db",
      metrics={ERR: (0.1, 40.0, -1)},
      after=["ERROR could not connect to orders-db:5432: connection refused"] * 10,
      alerts=[("orders-db down", "orders-db")]),
    S("dep-upstream-payments", "Checkout errors: payment calls failing", "checkout",
      "dependency_failure", "payments", metrics={ERR: (0.2, 8.0, -2), LAT: (0.3, 2.0, -2)},
      after=["ERROR upstream payments returned 503: no healthy upstream"] * 8,
      alerts=[("payments high error rate", "payments")]),
    S("dep-deploy-upstream", "Checkout failing after a deploy elsewhere", "checkout",
      "dependency_failure", "inventory", changes=[("inventory", "deploy", 5, "v4", "v3")],
      metrics={ERR: (0.1, 5.0, -3)},
      after=["ERROR call to inventory failed: 502 bad gateway"] * 6),
    S("dep-redis", "Sessions lost, login loops", "web", "dependency_failure", "redis",
      metrics={ERR: (0.5, 10.0, -1)},
      after=["ERROR redis connection reset by peer (host=redis.internal)"] * 7),
    S("dep-innocent-own-deploy", "Profile API failing", "profile", "dependency_failure", "users-db",
      changes=[("profile", "deploy", 1, "v20", "v19")], metrics={ERR: (0.1, 9.0, -12)},
      after=["ERROR timed out connecting to users-db after 5000 ms"] * 9,
      alerts=[("users-db replica lag high", "users-db")]),
    S("dep-circuit", "Search degraded: suggestions missing", "search", "dependency_failure", "suggest",
      metrics={ERR: (0.0, 2.0, -3)},
      after=["WARN circuit breaker open for suggest (5 consecutive failures)"] * 5),
    S("dep-queue", "Worker cannot publish events", "worker", "dependency_failure", "rabbitmq",
      metrics={ERR: (0.0, 6.0, -2)},
      after=["ERROR could not connect to rabbitmq:5672: ECONNREFUSED"] * 6),
    # --- code bugs ------------------------------------------------------------------
    S("bug-leapday", "Billing job crashed on Feb 29", "billing", "code_bug", "billing",
      metrics={ERR: (0.0, 3.0, 0)},
      after=["Traceback: ValueError: day is out of range for month"] * 5),
    S("bug-npe", "Shipping quotes failing for one carrier", "shipping", "code_bug", "shipping",
      metrics={ERR: (0.2, 2.5, -3)},
      after=["java.lang.NullPointerException at QuoteService.price(QuoteService.java:88)"] * 7),
    S("bug-deadlock", "Inventory updates hanging", "inventory", "code_bug", "inventory",
      metrics={LAT: (0.1, 5.0, -2)},
      after=["ERROR deadlock detected while updating stock rows"] * 4),
    S("bug-old-deploy", "Reports failing for large accounts", "reports", "code_bug", "reports",
      changes=[("reports", "deploy", 600, "v2", "v1")], metrics={ERR: (0.1, 1.5, -5)},
      after=["IndexError: list index out of range in paginate()"] * 6),
    S("bug-div-zero", "Analytics dashboard 500s", "analytics", "code_bug", "analytics",
      metrics={ERR: (0.0, 4.0, -1)}, after=["ZeroDivisionError: division by zero in ratio()"] * 5),
    S("bug-unicode", "Signup fails for some names", "signup", "code_bug", "signup",
      metrics={ERR: (0.1, 1.0, -2)},
      after=["UnicodeEncodeError exception: unhandled character in name field"] * 4),
    # --- external factors -------------------------------------------------------------
    S("ext-stripe", "Card payments failing", "payments", "external_factor", "stripe",
      metrics={ERR: (0.2, 20.0, -2)},
      after=["ERROR stripe API returned 503; provider status page reports an incident"] * 8),
    S("ext-ratelimit", "SMS verification codes not delivered", "verify", "external_factor", "twilio",
      metrics={ERR: (0.0, 7.0, -3)}, after=["WARN rate limited by twilio: 429 Too Many Requests"] * 6),
    S("ext-cdn", "Static assets slow in Asia", "web", "external_factor", "cloudflare",
      metrics={LAT: (0.1, 2.2, -4)}, after=["cdn edge cloudflare timeout for region ap-south"] * 4),
    S("ext-ddos", "Login endpoint flooded", "auth", "external_factor", "auth",
      metrics={TRAF: (100, 5000, -1), ERR: (0.1, 3.0, -1)},
      after=["WARN bot traffic detected from external ASN; ddos mitigation engaged"] * 6),
    S("ext-aws", "S3 uploads failing in us-east-1", "uploads", "external_factor", "aws",
      metrics={ERR: (0.1, 12.0, -5)}, after=["ERROR aws s3 region us-east-1: service unavailable"] * 5),
    S("ext-dns", "Partner webhooks failing", "partners", "external_factor", "partner-api",
      metrics={ERR: (0.0, 5.0, -2)}, after=["ERROR dns resolution failed for partner-api.example.com"] * 5),
    # --- no evidence at all -----------------------------------------------------------
    S("none-vague", "Something is off with the dashboard", "dashboard", "insufficient", ""),
    S("none-flat", "Customer says the app feels slow", "app", "insufficient", "",
      metrics={LAT: (0.2, 0.2, 0), ERR: (0.1, 0.1, 0)}, before=BASE_LOGS, after=BASE_LOGS),
    S("none-old-deploy", "Intermittent reports of errors", "api", "insufficient", "",
      changes=[("api", "deploy", 400, "v1", "v0")], metrics={ERR: (0.5, 0.5, 0)}),
]  # fmt: skip


def _series(before: float, after: float, at_min: float, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    points = []
    for minute in range(-60, 31):
        level = after if minute >= at_min else before
        points.append((ONSET + minute * 60, max(0.0, level * (1 + rng.uniform(-0.04, 0.04)))))
    return points


def evidence_of(s: Scenario, seed: int) -> list[dict]:
    """The evidence items the context stage would store for this scenario."""
    items: list[dict] = []

    def add(collector: str, summary: str, data: dict, status: str = "ok") -> None:
        items.append(
            {
                "key": f"E{len(items) + 1}",
                "collector": collector,
                "status": status,
                "summary": summary,
                "data": data,
            }
        )

    for service, kind, minutes, version, previous in s.changes:
        if minutes > 120:
            continue  # outside the changes window
        add(
            "changes",
            f"{kind} of {service} {version}, {minutes} min before onset",
            {
                "service": service,
                "own_service": service == s.service,
                "kind": kind,
                "status": "succeeded",
                "version": version,
                "previous_version": previous,
                "minutes_before_onset": float(minutes),
            },
        )
    if not any(i["collector"] == "changes" for i in items):
        add("changes", "No change in the 2 h before onset", {}, "empty")
    for title, service in s.alerts:
        add("alerts", f"firing alert: {title}", {"title": title, "service": service, "own": False})
    add(
        "alerts",
        f"firing alert: {s.text}",
        {"title": s.text, "service": s.service, "own": True},
    )
    for i, (signal, (before, after, at_min)) in enumerate(sorted(s.metrics.items())):
        points = _series(before, after, at_min, seed + i)
        change = detect(points)
        data = {"signal": signal, "change": change.as_dict() if change else None}
        if change:
            data["onset_minutes_before_incident"] = round((ONSET - change.time) / 60, 1)
        add("metrics", f"{signal}", data)
    lines = [(ONSET - 1800 + i * 7, line) for i, line in enumerate(s.before)]
    lines += [(ONSET + i * 5, line) for i, line in enumerate(s.after)]
    for template in mine(lines, baseline_before=ONSET - 300)[:5]:
        add("logs", f"log template x{template['count']}: {template['template']}", template)
    return items


def grade(s: Scenario, hypotheses: list, status: str) -> tuple[int, bool, bool, bool]:
    """(grade, category top-1, category top-3, component top-1)."""
    if s.category == "insufficient":
        right = status == "insufficient_evidence"
        return (100 if right else 0), right, right, right
    top = hypotheses[0] if hypotheses and status == "diagnosed" else None
    cats = [h.category for h in hypotheses[:3]]
    top1 = top is not None and top.category == s.category
    top3 = s.category in cats
    comp = top is not None and top.component == s.component
    if top1 and comp:
        return 100, top1, top3, comp
    if top1 or (top is not None and top.category in NEIGHBOURS[s.category] and top3):
        return 65, top1, top3, comp
    if top3:
        return 35, top1, top3, comp
    return 0, top1, top3, comp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    rows = []
    for n, s in enumerate(SCENARIOS):
        evidence = evidence_of(s, seed=n)
        d = diagnose(evidence=evidence, text=s.text, service=s.service)
        g, top1, top3, comp = grade(s, d.hypotheses, d.status)
        top = d.hypotheses[0] if d.hypotheses else None
        said = f"{top.category}/{top.component} {top.confidence:.2f}" if top else "-"
        wrong_confident = (
            bool(top) and d.status == "diagnosed" and not top1 and top.confidence >= CONFIDENT
        )
        rows.append((g, top1, top3, comp, wrong_confident))
        print(
            f"{s.name:26} truth {s.category}/{s.component or '-':12} said {d.status[:12]:12} "
            f"{said:42} grade {g:3}{'  CONFIDENT-WRONG' if wrong_confident else ''}"
        )
        if args.verbose:
            for h in d.hypotheses[:3]:
                print(f"    {h.category:20} {h.confidence:.2f} {h.evidence} {h.statement[:90]}")
    n = len(rows)
    print()
    print(f"scenarios            {n}")
    print(f"category top-1       {sum(r[1] for r in rows) / n:.0%}")
    print(f"category top-3       {sum(r[2] for r in rows) / n:.0%}")
    print(f"component top-1      {sum(r[3] for r in rows) / n:.0%}")
    print(f"mean grade           {sum(r[0] for r in rows) / n:.1f}")
    print(f"confident and wrong  {sum(r[4] for r in rows) / n:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
