"""A local Fly Machines API that checks requests against the documented shapes.

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
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

from testing.servers import handler_server

TOKEN = "fly-test-token-5f2e"
APP = "billing-api"
OLD_IMAGE = f"registry.fly.io/{APP}:deployment-01HZX0AAAA"
NEW_IMAGE = f"registry.fly.io/{APP}:deployment-01HZX9ZZZZ"
UPDATE_KEYS = {
    "config",
    "current_version",
    "lease_ttl",
    "lsvd",
    "name",
    "region",
    "skip_launch",
    "skip_service_registration",
}


def machine(
    mid: str,
    name: str,
    state: str,
    region: str,
    group: str,
    *,
    image: str = NEW_IMAGE,
    updated_at: str = "2024-03-01T10:00:00Z",
    created_at: str = "2024-01-10T08:00:00Z",
) -> dict:
    """One machine as the Machines API lists it (with its documented timestamps)."""
    return {
        "id": mid,
        "name": name,
        "state": state,
        "region": region,
        "instance_id": f"01H{mid[:8].upper()}V1",
        "private_ip": "fdaa:0:1::2",
        "created_at": created_at,
        "updated_at": updated_at,
        "config": {
            "image": image,
            "guest": {"cpu_kind": "shared", "cpus": 1, "memory_mb": 256},
            "env": {"PORT": "8080"},
            "metadata": {"fly_process_group": group, "fly_release_version": "7"},
            "services": [{"internal_port": 8080, "protocol": "tcp"}],
        },
        "image_ref": {
            "registry": "registry.fly.io",
            "repository": APP,
            "tag": image.rsplit(":", 1)[-1],
            "digest": "sha256:" + "c" * 64,
        },
    }


@dataclass
class FakeFly:
    base: str
    machines: list[dict] = field(
        default_factory=lambda: [
            machine("148ed123a0e189", "web-1", "started", "ams", "app"),
            machine("d8d9871b0e4689", "web-2", "started", "ams", "app"),
            machine("5683d920b1e948", "web-3", "stopped", "fra", "app"),
            machine("91852e6c0e2d38", "web-4", "suspended", "fra", "app"),
            machine("3d8d413b29d089", "worker", "stopped", "fra", "worker"),
        ]
    )
    # (action, machine id or "*") -> answers to give before behaving normally.
    script: dict[tuple[str, str], list[tuple[int, dict, dict]]] = field(default_factory=dict)
    # (method, path, time, parsed body or None), in arrival order.
    requests: list[tuple[str, str, float, object]] = field(default_factory=list)
    done: list[tuple[str, str]] = field(default_factory=list)  # (action, machine id) applied
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_id(self, mid: str) -> dict | None:
        return next((m for m in self.machines if m["id"] == mid), None)

    def posts(self) -> list[str]:
        return [path for method, path, _, _ in self.requests if method == "POST"]

    @property
    def restarts(self) -> list[str]:
        """The machines restarted, in order."""
        return [mid for verb, mid in self.done if verb == "restart"]

    def fail(self, action: str, mid: str, status: int, times: int = 1, **headers) -> None:
        body = {"error": f"scripted {status}"}
        self.script.setdefault((action, mid), []).extend([(status, headers, body)] * times)


class FlyHandler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, payload, headers: dict | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k.replace("_", "-"), v)
        self.end_headers()
        self.wfile.write(body)

    def _scripted(self, fake: FakeFly, action: str, mid: str) -> bool:
        for key in ((action, mid), (action, "*")):
            queue = fake.script.get(key)
            if queue:
                status, headers, body = queue.pop(0)
                self._json(status, body, headers)
                return True
        return False

    def _handle(self, method: str) -> None:
        fake: FakeFly = self.server.fake  # type: ignore[attr-defined]
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not json>"
        with fake.lock:
            fake.requests.append((method, self.path, time.monotonic(), body))
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._json(401, {"error": "You must be authenticated to view this."})
            m = re.fullmatch(r"/v1/apps/([^/]+)/machines(?:/([^/]+))?(?:/([a-z]+))?", self.path)
            if not m or m.group(1) != APP:
                return self._json(404, {"error": "app not found"})
            mid, verb = m.group(2), m.group(3)
            if mid is None:
                if method != "GET":
                    return self._json(405, {"error": "method not allowed"})
                if not self._scripted(fake, "list", "*"):
                    self._json(200, fake.machines)
                return None
            machine = fake.by_id(mid)
            if machine is None:
                return self._json(404, {"error": "machine not found"})
            if method == "GET" and verb is None:
                if not self._scripted(fake, "get", mid):
                    self._json(200, machine)
                return None
            if method != "POST":
                return self._json(405, {"error": "method not allowed"})
            if verb is None:
                return self._update(fake, machine, body)
            if verb not in ("start", "stop", "restart"):
                return self._json(404, {"error": "not found"})
            allowed = {"signal", "timeout"} if verb == "stop" else set()
            if body is not None and (not isinstance(body, dict) or set(body) - allowed):
                return self._json(400, {"error": f"unexpected body for {verb}"})
            if self._scripted(fake, verb, mid):
                return None
            if verb == "start":
                previous = machine["state"]
                machine["state"] = "started"
                fake.done.append(("start", mid))
                return self._json(200, {"previous_state": previous, "migrated": False})
            if verb == "stop":
                machine["state"] = "stopped"
            fake.done.append((verb, mid))
            return self._json(200, {"ok": True})

    def _update(self, fake: FakeFly, machine: dict, body) -> None:
        if self.headers.get("Content-Type") != "application/json":
            return self._json(400, {"error": "expected a JSON body"})
        if not isinstance(body, dict) or set(body) - UPDATE_KEYS:
            return self._json(400, {"error": "unexpected keys in the update"})
        config = body.get("config")
        if not isinstance(config, dict) or not isinstance(config.get("image"), str):
            return self._json(400, {"error": "config.image is required"})
        # The docs: no partial updates; the whole config comes back.
        rest = {k: v for k, v in config.items() if k != "image"}
        if rest != {k: v for k, v in machine["config"].items() if k != "image"}:
            return self._json(400, {"error": "partial config: send the whole config"})
        if "current_version" in body and body["current_version"] != machine["instance_id"]:
            return self._json(400, {"error": "current_version does not match"})
        if self._scripted(fake, "update", machine["id"]):
            return None
        machine["config"] = copy.deepcopy(config)
        machine["instance_id"] = machine["instance_id"][:-1] + "2"
        machine["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        fake.done.append(("update", machine["id"]))
        self._json(200, machine)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


@contextmanager
def fly_server(machines: list[dict] | None = None) -> Iterator[FakeFly]:
    """The fake Fly Machines API on a free loopback port (the default machines unless given)."""
    with handler_server(FlyHandler) as (httpd, base):
        fake = FakeFly(base=base) if machines is None else FakeFly(base=base, machines=machines)
        httpd.fake = fake
        yield fake
