"""How often the diagnosis names the right root cause, on scenarios with known answers.

    uv run python bench/diagnosis.py [--verbose] [--in-memory] [--set main|holdout|fresh|all]
    uv run python bench/diagnosis.py --record      # with ANTHROPIC_API_KEY: record Claude

Each scenario has the incident text, its alerts, the change events, golden-signal
series and log lines, and the true root-cause category and component.

Default mode, against real parts: the series of every scenario are backfilled into a
real Prometheus TSDB (`promtool tsdb create-blocks-from openmetrics`) and served by a
Prometheus started on that data directory; the log lines go through the Loki
stand-in the tests use (testing/fakes/loki.py); the changes are POSTed to the webhook
endpoint (GitHub `deployment_status` signed with X-Hub-Signature-256, or the generic
change JSON with a bearer token); each scenario's incident is then gathered by the
context stage (`evidence_gather`: the five collectors through the executor's
Prometheus and Loki connectors) and written up by the runbook author:
- offline: the evidence-driven offline diagnoser (no API key);
- Claude: the real `anthropic` SDK over the fake transport, answering the response
  recorded for that scenario (bench/recorded/diagnosis/<name>.json; `--record`
  makes them with a real key). A scenario without a recording is not counted.
Every scenario gets its own onset, 4 h apart, so their windows never overlap.

`--in-memory` (or when promtool, Prometheus or the database are missing) builds the
same evidence with the stage's own algorithms instead, and says so.

Printed per scenario and in total: category top-1 and top-3, component top-1, the
grade (100 right cause, 65 one hop short, 35 right area, 0 wrong) and the rate of
confident-and-wrong answers (top hypothesis wrong with confidence >= 0.7). A
scenario whose truth is "insufficient" is right when the author abstains.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_response.settings")

from summary import record  # noqa: E402

RECORDINGS = HERE / "recorded" / "diagnosis"
PG_URL = "postgres://postgres@127.0.0.1:5432/ir_bench_diagnosis"
CONFIDENT = 0.7
SPACING = 4 * 3600  # seconds between two scenarios' onsets: no window overlaps another
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
    after: list[str] = field(default_factory=list)  # error lines since onset
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (title, service)


def S(*args, **kw) -> Scenario:
    return Scenario(*args, **kw)


ERR, LAT, TRAF, SAT = "errors", "latency", "traffic", "saturation"
BASE_LOGS = ["GET /health 200 in 3 ms", "cache miss for key user:123"]
# Every service's signals when nothing happens to them: flat with noise, never absent.
QUIET = {ERR: 0.2, LAT: 0.2, TRAF: 100.0, SAT: 40.0}
# The catalog's dependencies (written as a catalog would be, not from the answers).
CATALOG_DEPS = {
    "checkout": ["payments", "inventory", "checkout-db"],
    "orders": ["orders-db", "payments"],
    "web": ["redis", "api"],
    "profile": ["users-db"],
    "search": ["suggest", "search-index"],
    "worker": ["rabbitmq"],
    "payments": ["payments-db"],
    "api": ["api-db", "redis"],
    "billing": ["payments"],
    "uploads": ["users-db"],
    "ledger-sync": ["ledger"],
    "events": ["kafka"],
    "notify": ["notify-queue"],
}
# Golden-signal PromQL per service, as the catalog declares it.
SIGNAL_METRIC = {
    ERR: "http_error_ratio_percent",
    LAT: "http_latency_p99_seconds",
    TRAF: "http_requests_per_second",
    SAT: "saturation_percent",
}
# Errors every service logs all the time: old templates in both windows.
BACKGROUND = [
    'level=error msg="request canceled by client" path=/api/items/{n}',
    'level=error msg="slow query logged" duration={n}ms table=events',
]


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

# A second set, written after the rules and never used to adjust them: wording from real
# systems' logs (Go, Java, Node, PostgreSQL, Envoy), smaller steps, catalog names that
# differ from the main set's. It says how far the main set's figures carry.
HOLDOUT = [
    S("h-deploy-module", "Checkout 5xx spike", "checkout", "deployment_issue", "checkout",
      changes=[("checkout", "deploy", 7, "v2.15", "v2.14")], metrics={ERR: (0.3, 2.1, -5)},
      after=["Error: Cannot find module './pricing/v3' from 'src/cart.js'"] * 6),
    S("h-deploy-latency-only", "API response times doubled", "api", "deployment_issue", "api",
      changes=[("api", "deploy", 20, "build-4411", "build-4410")], metrics={LAT: (0.25, 0.6, -15)}),
    S("h-deploy-two", "Orders failing since this morning's releases", "orders",
      "deployment_issue", "orders",
      changes=[("orders", "deploy", 30, "v7.1", "v7.0"), ("orders", "deploy", 8, "v7.2", "v7.1")],
      metrics={ERR: (0.2, 3.5, -6)},
      after=["org.springframework.beans.factory.BeanCreationException: Error creating bean 'refundClient'"] * 5),
    S("h-config-smtp", "Password reset emails bounce", "mailer", "configuration_error", "mailer",
      changes=[("mailer", "config", 12, "smtp-creds-rotation", "")], metrics={ERR: (0.0, 2.0, -10)},
      after=["SMTP AUTH failed: 535 5.7.8 Username and Password not accepted"] * 5),
    S("h-config-hmac", "Incoming webhooks rejected", "webhooks", "configuration_error", "webhooks",
      metrics={ERR: (0.1, 9.0, -3)},
      after=["signature mismatch for delivery: webhook secret does not match (was it rotated?)"] * 7),
    S("h-capacity-pg-clients", "Orders API erroring under load", "orders", "capacity_problem", "orders",
      metrics={SAT: (55, 100, -4), TRAF: (120, 260, -6), ERR: (0.1, 4.0, -4)},
      after=["FATAL: sorry, too many clients already"] * 8),
    S("h-capacity-lag", "Event consumer lagging behind", "events", "capacity_problem", "events",
      metrics={TRAF: (300, 1000, -8), LAT: (0.5, 4.0, -6)},
      after=["consumer group lag 250000 on partition 3, processing slower than produce rate"] * 4),
    S("h-capacity-heap", "Catalog service crashing", "catalog", "capacity_problem", "catalog",
      metrics={SAT: (60, 98, -12), ERR: (0.1, 3.0, -2)},
      after=["java.lang.OutOfMemoryError: Java heap space"] * 5),
    S("h-dep-deadline", "Checkout timeouts", "checkout", "dependency_failure", "inventory",
      metrics={LAT: (0.3, 5.0, -3), ERR: (0.1, 2.0, -3)},
      after=["rpc error: code = DeadlineExceeded desc = context deadline exceeded calling inventory.GetStock"] * 9,
      alerts=[("inventory p99 latency high", "inventory")]),
    S("h-dep-es", "Search results empty", "search", "dependency_failure", "search-index",
      metrics={ERR: (0.0, 30.0, -2)},
      after=["NoNodeAvailableException: search-index cluster unreachable, health RED"] * 6),
    S("h-dep-pg-refused", "Payments API down", "payments", "dependency_failure", "payments-db",
      metrics={ERR: (0.2, 50.0, -1)},
      after=["dial tcp 10.0.3.4:5432: connect: connection refused"] * 10,
      alerts=[("payments-db instance down", "payments-db")]),
    S("h-dep-envoy", "Ledger sync errors", "ledger-sync", "dependency_failure", "ledger",
      changes=[("ledger-sync", "deploy", 1, "v3", "v2")], metrics={ERR: (0.1, 6.0, -15)},
      after=["upstream connect error or disconnect/reset before headers. reset reason: connection failure, upstream ledger"] * 6,
      alerts=[("ledger error budget burn", "ledger")]),
    S("h-bug-recursion", "Docs export failing", "docs", "code_bug", "docs",
      metrics={ERR: (0.0, 1.2, -4)},
      after=["RecursionError: maximum recursion depth exceeded in serialize_tree"] * 4),
    S("h-bug-go-index", "Router crashing on some requests", "router", "code_bug", "router",
      metrics={ERR: (0.2, 1.5, -3)},
      after=["panic: runtime error: index out of range [3] with length 3"] * 5),
    S("h-ext-paypal", "PayPal checkout unavailable", "payments", "external_factor", "paypal",
      metrics={ERR: (0.2, 6.0, -5)},
      after=["paypal: HTTP 503 Service Unavailable from api.paypal.com"] * 6),
    S("h-ext-google", "Address autocomplete failing", "geo", "external_factor", "googleapis",
      metrics={ERR: (0.1, 8.0, -3)},
      after=["maps.googleapis.com returned 500 INTERNAL for place autocomplete"] * 5),
    S("h-none-weird", "Users report the app behaves oddly", "app", "insufficient", ""),
    S("h-none-dep-deploy-flat", "Reports of slowness, nothing confirmed", "orders", "insufficient", "",
      changes=[("payments", "deploy", 100, "v9", "v8")], metrics={LAT: (0.3, 0.3, 0)}),
]  # fmt: skip

# A third set, written after every rule above and run once, as it is: no rule was
# changed for it (see docs/evidence.md).
FRESH = [
    S("f-config-unknown-field", "Checkout errors after config push", "checkout",
      "configuration_error", "checkout", changes=[("checkout", "config", 5, "cfg-2211", "cfg-2210")],
      metrics={ERR: (0.2, 3.0, -4)},
      after=['invalid configuration: unknown field "retry_polcy" in checkout.yaml'] * 5),
    S("f-deploy-node-heap", "Web frontend pods crash-looping since release", "web",
      "deployment_issue", "web", changes=[("web", "deploy", 10, "v41", "v40")],
      metrics={ERR: (0.3, 4.0, -7), SAT: (50, 95, -7)},
      after=["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"] * 4),
    S("f-capacity-redis-evict", "Cache misses spiking, Redis full", "cache", "capacity_problem",
      "cache", metrics={SAT: (60, 100, -5), LAT: (0.01, 0.08, -4)},
      after=["OOM command not allowed when used memory > 'maxmemory'"] * 6),
    S("f-dep-internal-queue", "Notifications delayed", "notify", "dependency_failure",
      "notify-queue", metrics={LAT: (1.0, 30.0, -6)},
      after=["failed to publish to notify-queue: i/o timeout"] * 7),
    S("f-ext-google-oauth", "Login with Google failing", "auth", "external_factor", "google",
      metrics={ERR: (0.1, 5.0, -3)},
      after=["oauth2: cannot fetch token: 503 from accounts.google.com"] * 5),
    S("f-bug-null-invoice", "Invoice page errors for some customers", "invoices", "code_bug",
      "invoices", metrics={ERR: (0.1, 0.9, -2)},
      after=["TypeError: Cannot read properties of null (reading 'id') at renderInvoice"] * 4),
    S("f-bug-assertion-old-deploy", "Ledger totals job failing", "ledger", "code_bug", "ledger",
      changes=[("ledger", "deploy", 180, "v12", "v11")], metrics={ERR: (0.0, 1.0, -1)},
      after=["AssertionError: totals do not balance for batch 8812"] * 3),
    S("f-two-deploys-dep-guilty", "Checkout payment step failing", "checkout", "dependency_failure",
      "payments", changes=[("checkout", "deploy", 40, "v2.16", "v2.15"), ("payments", "deploy", 4, "v5.3", "v5.2")],
      metrics={ERR: (0.2, 5.0, -2)}, after=["payments returned 500: internal error"] * 6),
    S("f-none-login", "Some users cannot log in", "auth", "insufficient", ""),
    S("f-none-background-only", "Intermittent errors reported by support", "api", "insufficient", "",
      metrics={ERR: (0.3, 0.3, 0)}),
]  # fmt: skip


# --- what each scenario's world looks like ------------------------------------------------


def series_of(s: Scenario, onset: float, seed: int) -> dict[str, list[tuple[float, float]]]:
    """Every golden signal, a point every 30 s from 70 min before onset to 40 min after:
    the scenario's step where it names one, else the service's quiet level; 4 % noise."""
    out = {}
    for i, signal in enumerate(sorted(QUIET)):
        before, after, at_min = s.metrics.get(signal, (QUIET[signal], QUIET[signal], 0))
        rng = random.Random(seed * 10 + i)
        points = []
        for half_minute in range(-140, 81):
            minute = half_minute / 2
            level = after if minute >= at_min else before
            value = max(0.0, level * (1 + rng.uniform(-0.04, 0.04)))
            points.append((onset + minute * 60, round(value, 6)))
        out[signal] = points
    return out


def _logfmt(level: str, line: str) -> str:
    return f'level={level} msg="{line.replace(chr(34), chr(39))}"'


def lines_of(s: Scenario, onset: float, seed: int) -> list[tuple[float, str]]:
    """What the service logged: its everyday error lines every 5 min in both windows, the
    scenario's baseline lines at info level, and its incident lines at error level."""
    rng = random.Random(seed)
    lines = []
    for minute in range(-60, 31, 5):
        for template in BACKGROUND:
            line = template.format(n=rng.randint(10, 9999))
            lines.append((onset + minute * 60 + rng.uniform(0, 60), line))
    lines += [(onset - 1800 + i * 7, _logfmt("info", line)) for i, line in enumerate(s.before)]
    lines += [(onset + i * 5, _logfmt("error", line)) for i, line in enumerate(s.after)]
    return sorted(lines)


ERROR_PATTERN = "level=error"  # the Loki target's error filter (its `error_pattern` option)


# --- in memory: the stage's algorithms on the same data, no servers --------------------------


def evidence_in_memory(s: Scenario, onset: float, seed: int) -> list[dict]:
    """The evidence items the context stage would store for this scenario."""
    from evidence.changepoint import detect
    from evidence.templates import mine

    items: list[dict] = []

    def add(collector: str, summary: str, data: dict, status: str = "ok") -> None:
        key = f"E{len(items) + 1}"
        items.append(
            {"key": key, "collector": collector, "status": status, "summary": summary, "data": data}
        )

    deps = set(CATALOG_DEPS.get(s.service, []))
    for service, kind, minutes, version, previous in s.changes:
        if minutes > 120 or (service != s.service and service not in deps):
            continue  # outside the changes window, or not a service the catalog links
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
                "dependencies": sorted(deps),
            },
        )
    if not any(i["collector"] == "changes" for i in items):
        add("changes", "No change in the 2 h before onset", {"dependencies": sorted(deps)}, "empty")
    for title, service in s.alerts:
        if service == s.service or service in deps:
            add("alerts", f"firing alert: {title}", {"title": title, "service": service})
    add("alerts", f"firing alert: {s.text}", {"title": s.text, "service": s.service, "own": True})
    add("similar", "No similar past incident", {}, "empty")
    window = (onset - 3600, onset + 1800)
    for signal, points in sorted(series_of(s, onset, seed).items()):
        # The collector reads ~60 points over the window.
        points = [p for p in points if window[0] <= p[0] <= window[1]][::3]
        change = detect(points)
        data = {"signal": signal, "change": change.as_dict() if change else None}
        if change:
            data["onset_minutes_before_incident"] = round((onset - change.time) / 60, 1)
        add("metrics", signal, data)
    lines = [(t, line) for t, line in lines_of(s, onset, seed) if ERROR_PATTERN in line]
    lines = [(t, line) for t, line in lines if t >= onset - 3600]
    mined = mine(lines, baseline_before=onset - 300)[:5]
    for template in mined:
        add("logs", f"log template x{template['count']}: {template['template']}", template)
    if not mined:
        add("logs", "No error lines around onset", {}, "empty")
    return items


# --- against real servers ------------------------------------------------------------------


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _openmetrics(scenarios: list[Scenario], onsets: list[float]) -> str:
    """One OpenMetrics exposition with every sample of every scenario, time-ordered per series."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for n, (s, onset) in enumerate(zip(scenarios, onsets, strict=True)):
        for signal, points in series_of(s, onset, seed=n).items():
            samples.setdefault((SIGNAL_METRIC[signal], s.service), []).extend(points)
    out = []
    for metric in sorted({m for m, _ in samples}):
        out.append(f"# TYPE {metric} gauge")
        for (name, service), points in sorted(samples.items()):
            if name != metric:
                continue
            for t, v in sorted(points):
                out.append(f'{metric}{{service="{service}"}} {v} {t:.3f}')
    out.append("# EOF")
    return "\n".join(out) + "\n"


class RealWorld:
    """Prometheus on a backfilled TSDB, the Loki stand-in, a database with the catalog and
    the change sources; torn down by stop()."""

    def __init__(self, scenarios: list[Scenario], onsets: list[float], workdir: Path) -> None:
        from testing.fakes.loki import LokiStandIn
        from testing.processes import Proc, answers
        from testing.waiting import wait_until

        self.workdir = workdir
        exposition = workdir / "series.om"
        exposition.write_text(_openmetrics(scenarios, onsets))
        data = workdir / "tsdb"
        subprocess.run(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(exposition), str(data)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        port = _free_port()
        config = workdir / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1m\n")
        log = workdir / "prometheus.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [
                    shutil.which("prometheus") or "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={data}",
                    "--storage.tsdb.retention.time=3650d",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.prometheus = Proc(f"http://127.0.0.1:{port}", proc, log)
        wait_until(lambda: answers(self.prometheus, "/-/ready"), timeout=60, what="Prometheus")
        self.loki = LokiStandIn()

    def catalog(self, scenarios: list[Scenario]) -> None:
        from executor.models import Service, Target
        from incidents.models import AlertSource

        Target.objects.create(name="bench-prometheus", kind="prometheus", base=self.prometheus.url)
        Target.objects.create(
            name="bench-loki",
            kind="loki",
            base=self.loki.url,
            options={"error_pattern": ERROR_PATTERN},
        )
        names = {s.service for s in scenarios} | {d for ds in CATALOG_DEPS.values() for d in ds}
        for name in sorted(names):
            Service.objects.create(
                name=name,
                golden_signals={
                    signal: f'{metric}{{service="{name}"}}'
                    for signal, metric in SIGNAL_METRIC.items()
                },
                dependencies=CATALOG_DEPS.get(name, []),
            )
        os.environ["BENCH_GITHUB_SECRET"] = "bench-github-hmac-key"
        os.environ["BENCH_CHANGE_TOKEN"] = "bench-change-token"
        AlertSource.objects.create(
            name="GitHub",
            slug="bench-github",
            kind="github",
            auth_mode="hmac",
            secret_env="BENCH_GITHUB_SECRET",
        )
        AlertSource.objects.create(
            name="CI changes",
            slug="bench-changes",
            kind="change",
            auth_mode="bearer",
            secret_env="BENCH_CHANGE_TOKEN",
        )
        self.alerts = AlertSource.objects.create(
            name="Monitoring", slug="bench-alerts", kind="generic", secret_env="BENCH_ALERT_TOKEN"
        )

    def push_logs(self, service: str, lines: list[tuple[float, str]]) -> None:
        import httpx

        with self.loki._lock:
            self.loki.streams.clear()  # one scenario's logs at a time
        values = [[str(int(t * 1e9)), line] for t, line in lines]
        r = httpx.post(
            self.loki.url + "/loki/api/v1/push",
            json={"streams": [{"stream": {"service": service}, "values": values}]},
            timeout=10,
        )
        r.raise_for_status()

    def stop(self) -> None:
        self.loki.stop()
        self.prometheus.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def post_changes(client, s: Scenario, onset: float, n: int) -> None:
    """Each change through the webhook: deploys and rollbacks as GitHub would send them
    (every other scenario), the rest as the generic change JSON."""
    for i, (service, kind, minutes, version, previous) in enumerate(s.changes):
        started = onset - minutes * 60
        if kind in ("deploy", "rollback") and n % 2 == 0:
            payload = {
                "action": "created",
                "deployment_status": {
                    "id": n * 100 + i,
                    "state": "success",
                    "created_at": _iso(started + 120),
                    "target_url": f"https://github.com/acme/{service}/actions/runs/{n}{i}",
                    "creator": {"login": "deploy-bot"},
                },
                "deployment": {
                    "id": n * 100 + i,
                    "sha": hashlib.sha1(f"{s.name}{i}".encode()).hexdigest(),  # noqa: S324
                    "ref": version,
                    "task": "rollback" if kind == "rollback" else "deploy",
                    "environment": "production",
                    "payload": {"service": service, "version": version}
                    | ({"previous_version": previous} if previous else {}),
                    "created_at": _iso(started),
                    "creator": {"login": "alice"},
                },
                "repository": {"name": service, "full_name": f"acme/{service}"},
                "sender": {"login": "alice"},
            }
            body = json.dumps(payload).encode()
            secret = os.environ["BENCH_GITHUB_SECRET"].encode()
            signature = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
            headers = {"X-GitHub-Event": "deployment_status", "X-Hub-Signature-256": signature}
            slug = "bench-github"
        else:
            payload = {
                "id": f"{s.name}-{i}",
                "service": service,
                "kind": kind,
                "version": version,
                "previous_version": previous,
                "status": "succeeded",
                "author": "alice",
                "started_at": _iso(started),
                "finished_at": _iso(started + 60),
            }
            body = json.dumps(payload).encode()
            headers = {"Authorization": f"Bearer {os.environ['BENCH_CHANGE_TOKEN']}"}
            slug = "bench-changes"
        answer = client.post(
            f"/hooks/{slug}/", data=body, content_type="application/json", headers=headers
        )
        if answer.status_code != 202:
            raise RuntimeError(f"{s.name}: the webhook refused a change: {answer.content[:300]}")


def open_incident(world: RealWorld, s: Scenario, onset: float, n: int):
    from incidents.models import Alert, Incident

    when = datetime.fromtimestamp(onset, UTC)
    incident = Incident.objects.create(
        title=s.text, description=s.text, service=s.service, severity="SEV2", detected_at=when
    )

    def alert(title: str, service: str, key: str, own: bool) -> None:
        Alert.objects.create(
            source=world.alerts,
            dedup_key=f"{s.name}-{key}",
            content_hash=f"{s.name}-{key}",
            title=title,
            service=service,
            status="firing",
            starts_at=when,
            first_seen=when,
            last_seen=when,
            incident=incident if own else None,
        )

    alert(s.text, s.service, "own", True)
    for i, (title, service) in enumerate(s.alerts):
        alert(title, service, f"other{i}", False)
    return incident


# --- Claude over recorded responses --------------------------------------------------------


def recording_of(s: Scenario) -> list[dict] | None:
    path = RECORDINGS / f"{s.name}.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["responses"]


def claude_document(incident, context: dict, s: Scenario, *, record_new: bool) -> tuple:
    """(document, author) from Claude: replayed through the real SDK over the fake
    transport, or (--record) asked for real and kept as the scenario's recording."""
    from django.conf import settings

    from runbooks.generation import generate_runbook_document

    if record_new:
        import anthropic
        import httpx2

        from runbooks.generation import claude as claude_module

        bodies: list[dict] = []

        class Recording(httpx2.HTTPTransport):
            def handle_request(self, request):
                response = super().handle_request(request)
                response.read()
                if response.status_code == 200 and request.url.path.endswith("/v1/messages"):
                    bodies.append(json.loads(response.content))
                return response

        previous = claude_module.http_client_factory
        claude_module.http_client_factory = lambda: anthropic.DefaultHttpxClient(
            transport=Recording()
        )
        try:
            result = generate_runbook_document(incident=incident, context=context)
        finally:
            claude_module.http_client_factory = previous
        RECORDINGS.mkdir(parents=True, exist_ok=True)
        (RECORDINGS / f"{s.name}.json").write_text(
            json.dumps({"scenario": s.name, "responses": bodies}, indent=1) + "\n"
        )
        return result.document, result.author
    responses = recording_of(s)
    if responses is None:
        return None, ""
    from testing.fakes.anthropic import fake_claude

    settings.ANTHROPIC_API_KEY = "replayed-recording"  # noqa: S105 (not a key: turns Claude on)
    try:
        with fake_claude(list(responses)):
            result = generate_runbook_document(incident=incident, context=context)
    finally:
        settings.ANTHROPIC_API_KEY = ""
    return result.document, result.author


# --- grading ------------------------------------------------------------------------------


@dataclass
class Graded:
    grade: int
    top1: bool
    top3: bool
    component: bool
    confident_wrong: bool
    said: str


def grade(s: Scenario, diagnosis: dict | None) -> Graded:
    """Grade a runbook's `diagnosis` (status, hypotheses) against the truth."""
    diagnosis = diagnosis or {"status": "insufficient_evidence", "hypotheses": []}
    status = diagnosis.get("status", "")
    hypotheses = diagnosis.get("hypotheses") or []
    first = hypotheses[0] if hypotheses else None
    said = (
        f"{first['category']}/{first['component']} {first.get('confidence', 0):.2f}"
        if first
        else "-"
    )
    said = f"{status[:12]:12} {said}"
    if s.category == "insufficient":
        right = status == "insufficient_evidence"
        wrong_sure = (
            not right and first is not None and float(first.get("confidence", 0)) >= CONFIDENT
        )
        return Graded(100 if right else 0, right, right, right, wrong_sure, said)
    top = first if status == "diagnosed" else None
    cats = [h.get("category") for h in hypotheses[:3]]
    top1 = top is not None and top.get("category") == s.category
    top3 = s.category in cats
    comp = top is not None and top.get("component") == s.component
    wrong_sure = top is not None and not top1 and float(top.get("confidence", 0)) >= CONFIDENT
    if top1 and comp:
        g = 100
    elif top1 or (top is not None and top.get("category") in NEIGHBOURS[s.category] and top3):
        g = 65
    elif top3:
        g = 35
    else:
        g = 0
    return Graded(g, top1, top3, comp, wrong_sure, said)


def totals(label: str, rows: list[Graded]) -> dict[str, float]:
    n = len(rows)
    if not n:
        print(f"\n{label}: no scenario")
        return {}
    out = {
        "top1": sum(r.top1 for r in rows) / n,
        "top3": sum(r.top3 for r in rows) / n,
        "component": sum(r.component for r in rows) / n,
        "grade": sum(r.grade for r in rows) / n,
        "confident_wrong": sum(r.confident_wrong for r in rows) / n,
    }
    print(f"\n{label} ({n} scenarios)")
    print(f"  category top-1       {out['top1']:.0%}")
    print(f"  category top-3       {out['top3']:.0%}")
    print(f"  component top-1      {out['component']:.0%}")
    print(f"  mean grade           {out['grade']:.1f}")
    print(f"  confident and wrong  {out['confident_wrong']:.0%}")
    return out


# --- the run ------------------------------------------------------------------------------


def _why_not_real() -> str:
    missing = [b for b in ("promtool", "prometheus") if not shutil.which(b)]
    if missing:
        return f"{' and '.join(missing)} not installed"
    return ""


def _setup_django(workdir: Path, use_pg: bool) -> None:
    for var in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "BUCKET_NAME"):
        os.environ.pop(var, None)
    os.environ.update(
        {
            "DATA_DIR": str(workdir),
            "ANTHROPIC_API_KEY": "",
            "ANTHROPIC_MAX_RETRIES": "0",
            "ANTHROPIC_CALLS_PER_MINUTE": "100000",
            "EXECUTOR_DEMO_TARGETS": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    if use_pg:
        from scratch_db import recreate_database

        recreate_database(PG_URL)
        os.environ["DATABASE_URL"] = PG_URL
    import django

    # whitenoise warns that no static files were collected; a bench serves none.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
    django.setup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--in-memory", action="store_true", help="no servers: algorithms only")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--record", action="store_true", help="record Claude (needs a real key)")
    parser.add_argument(
        "--set",
        choices=["main", "holdout", "fresh", "all"],
        default="all",
        help="the main set (targets), the held-out set, the fresh set, or all (default)",
    )
    args = parser.parse_args()
    key = os.environ.get("ANTHROPIC_API_KEY", "")
    if args.record and not key:
        parser.error("--record asks the real API: set ANTHROPIC_API_KEY")
    chosen = {
        "main": SCENARIOS,
        "holdout": HOLDOUT,
        "fresh": FRESH,
        "all": SCENARIOS + HOLDOUT + FRESH,
    }[args.set]
    scenarios = [s for s in chosen if not args.only or s.name in args.only.split(",")]
    start = (int(time.time()) // 3600) * 3600 - SPACING * (len(scenarios) + 6)
    onsets = [float(start + n * SPACING) for n in range(len(scenarios))]
    why_not = "asked for" if args.in_memory else _why_not_real()
    workdir = Path(tempfile.mkdtemp(prefix="bench-diagnosis-"))
    use_pg = not why_not and _port_open("127.0.0.1", 5432)
    _setup_django(workdir, use_pg)
    if why_not:
        print(f"mode: in memory ({why_not}): the stage's algorithms on the scenarios' data")
        return run_in_memory(scenarios, onsets, args)
    from django.conf import settings

    db = "PostgreSQL" if use_pg else "SQLite"
    print(
        f"mode: real servers: Prometheus on a promtool-backfilled TSDB, the Loki stand-in, "
        f"changes through the webhook, {db}, the context stage's collectors"
    )
    world = RealWorld(scenarios, onsets, workdir)
    try:
        from django.core.management import call_command
        from django.test import Client

        call_command("migrate", verbosity=0)
        world.catalog(scenarios)
        if args.record:
            settings.ANTHROPIC_API_KEY = key
        return run_real(world, Client(), scenarios, onsets, args, db)
    finally:
        world.stop()
        if use_pg:
            from django.db import connections

            connections.close_all()
            from scratch_db import drop_database

            drop_database(PG_URL)
        shutil.rmtree(workdir, ignore_errors=True)


def _part(s: Scenario) -> str:
    return "held-out" if s in HOLDOUT else "fresh" if s in FRESH else "main"


def _line(s: Scenario, offline: Graded, claude: Graded | None, note: str = "") -> None:
    c = f"claude {claude.said:44} {claude.grade:3}" if claude else "claude (not recorded)"
    print(
        f"{s.name:26} {s.category[:12]:12}/{s.component or '-':11} "
        f"offline {offline.said:44} {offline.grade:3}"
        f"{' CONFIDENT-WRONG' if offline.confident_wrong else ''}  {c}{note}"
    )


def run_real(world: RealWorld, client, scenarios, onsets, args, db: str) -> int:
    from django.conf import settings

    from evidence.selectors import latest_evidence
    from evidence.stage import evidence_gather
    from incidents.models import Alert
    from runbooks.generation import generate_runbook_document
    from runbooks.services import _context

    offline_rows: dict[str, list[Graded]] = {"main": [], "held-out": [], "fresh": []}
    claude_rows: dict[str, list[Graded]] = {"main": [], "held-out": [], "fresh": []}
    fallbacks = 0
    for n, (s, onset) in enumerate(zip(scenarios, onsets, strict=True)):
        world.push_logs(s.service, lines_of(s, onset, seed=n))
        post_changes(client, s, onset, n)
        incident = open_incident(world, s, onset, n)
        evidence_gather(incident=incident, seconds=10)
        context = _context(incident)
        settings.ANTHROPIC_API_KEY = ""
        offline = generate_runbook_document(incident=incident, context=context)
        g_off = grade(s, offline.document.get("diagnosis"))
        part = _part(s)
        offline_rows[part].append(g_off)
        g_claude, note = None, ""
        if args.record or recording_of(s) is not None:
            document, author = claude_document(incident, context, s, record_new=args.record)
            if document is not None:
                g_claude = grade(s, document.get("diagnosis"))
                claude_rows[part].append(g_claude)
                if author != "claude":
                    fallbacks += 1
                    note = " (Claude's answer refused: offline fallback)"
        _line(s, g_off, g_claude, note)
        if args.verbose:
            for item in latest_evidence(incident.pk):
                print(
                    f"    {item['key']:4} {item['collector']:8} {item['status']:7} "
                    f"{item['summary'][:100]}"
                )
            for h in offline.document.get("diagnosis", {}).get("hypotheses", [])[:3]:
                print(
                    f"    -> {h['category']:20} {h['confidence']:.2f} {h['evidence']} "
                    f"{h['statement'][:80]}"
                )
        Alert.objects.filter(status="firing").update(status="resolved")
    for part, rows in offline_rows.items():
        if rows:
            _record(
                totals(f"offline diagnoser, {part} set, real servers ({db})", rows), f"{part}, real"
            )
    recorded = sum(len(r) for r in claude_rows.values())
    print(
        f"\nClaude over recorded responses: {recorded} of {len(scenarios)} scenarios "
        f"recorded in {RECORDINGS.relative_to(ROOT)}"
        + (f", {fallbacks} fell back to the offline planner" if fallbacks else "")
    )
    for part, rows in claude_rows.items():
        if rows:
            totals(f"Claude, {part} set, recorded responses", rows)
    if not recorded:
        print("  (none recorded: run `bench/diagnosis.py --record` with ANTHROPIC_API_KEY set)")
    return 0


def run_in_memory(scenarios, onsets, args) -> int:
    from runbooks.generation.diagnosis import diagnose

    rows: dict[str, list[Graded]] = {"main": [], "held-out": [], "fresh": []}
    for n, (s, onset) in enumerate(zip(scenarios, onsets, strict=True)):
        evidence = evidence_in_memory(s, onset, seed=n)
        d = diagnose(evidence=evidence, text=s.text, service=s.service)
        g = grade(s, d.as_dict())
        rows[_part(s)].append(g)
        _line(s, g, None)
        if args.verbose:
            for h in d.hypotheses[:3]:
                print(f"    -> {h.category:20} {h.confidence:.2f} {h.evidence} {h.statement[:80]}")
    for part, graded in rows.items():
        if graded:
            _record(
                totals(f"offline diagnoser, {part} set, in memory", graded), f"{part}, in memory"
            )
    return 0


def _record(figures: dict[str, float], mode: str) -> None:
    if not figures:
        return
    record(
        "diagnosis",
        f"offline category top-1 ({mode})",
        figures["top1"] * 100,
        "≥ 80%",
        figures["top1"] >= 0.8,
        "%",
    )
    record(
        "diagnosis",
        f"offline category top-3 ({mode})",
        figures["top3"] * 100,
        "≥ 95%",
        figures["top3"] >= 0.95,
        "%",
    )
    record(
        "diagnosis",
        f"offline confident and wrong ({mode})",
        figures["confident_wrong"] * 100,
        "≤ 5%",
        figures["confident_wrong"] <= 0.05,
        "%",
    )


if __name__ == "__main__":
    raise SystemExit(main())
