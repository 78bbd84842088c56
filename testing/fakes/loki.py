"""Grafana Loki for the log tests: the real binary when installed, else a stand-in.

- `start_loki`: Grafana Loki (single process, in-memory ring, filesystem storage)
  when a Grafana Loki binary is installed. Debian's package named `loki` is a
  genetics program, so the binary is looked for by what `-version` prints.
- `LokiStandIn`: a server speaking Loki's documented push and query_range API for
  the one LogQL shape the connector sends; it reads string literals the way
  LogQL does (Go string literals) and answers anything else with a 400 parse
  error, as Loki does. It runs where Grafana Loki is not installed.
"""

import json
import os
import re
import shutil
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from testing.processes import Proc, answers
from testing.servers import serve
from testing.services import free_port
from testing.waiting import wait_until

_GRAFANA_LOKI_VERSION = re.compile(r"^loki, version (\S+)", re.MULTILINE)


def loki_binary() -> tuple[str, str] | tuple[None, str]:
    """(path, version) of a Grafana Loki binary, or (None, why not)."""
    candidates = [os.environ.get("LOKI_BIN", ""), shutil.which("loki") or ""]
    seen = []
    for binary in filter(None, candidates):
        try:
            out = subprocess.run(
                [binary, "-version"],
                capture_output=True,
                text=True,
                timeout=10,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            seen.append(f"{binary}: {exc}")
            continue
        text = (out.stdout or "") + (out.stderr or "")
        m = _GRAFANA_LOKI_VERSION.search(text)
        if m:
            return binary, m.group(1)
        first = text.strip().splitlines()[0] if text.strip() else "no output"
        seen.append(f"{binary} is not Grafana Loki ({first!r})")
    return None, "; ".join(seen) or "no loki binary on PATH and LOKI_BIN is not set"


def start_loki(binary: str, workdir: Path) -> Proc:
    """Single-process Loki (2.4-style config): no auth, in-memory ring, files in `workdir`."""
    http_port, grpc_port = free_port(), free_port()
    config = workdir / "loki.yml"
    config.write_text(
        "auth_enabled: false\n"
        "server:\n"
        "  http_listen_address: 127.0.0.1\n"
        f"  http_listen_port: {http_port}\n"
        "  grpc_listen_address: 127.0.0.1\n"
        f"  grpc_listen_port: {grpc_port}\n"
        "  log_level: warn\n"
        "common:\n"
        f"  path_prefix: {workdir}\n"
        "  storage:\n"
        "    filesystem:\n"
        f"      chunks_directory: {workdir / 'chunks'}\n"
        f"      rules_directory: {workdir / 'rules'}\n"
        "  replication_factor: 1\n"
        "  ring:\n"
        "    instance_addr: 127.0.0.1\n"
        "    kvstore:\n"
        "      store: inmemory\n"
        "schema_config:\n"
        "  configs:\n"
        "    - from: 2020-10-24\n"
        "      store: boltdb-shipper\n"
        "      object_store: filesystem\n"
        "      schema: v11\n"
        "      index:\n"
        "        prefix: index_\n"
        "        period: 24h\n"
    )
    log = workdir / "loki.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [binary, f"-config.file={config}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    p = Proc(f"http://127.0.0.1:{http_port}", proc, log)
    try:
        wait_until(lambda: answers(p, "/ready"), timeout=90, what="Loki /ready")
    except BaseException:
        p.stop()
        raise
    return p


def loki_push(url: str, labels: dict[str, str], lines: list[str]) -> None:
    """Push lines through Loki's JSON push API, one nanosecond apart, ending now."""
    now = time.time_ns()
    values = [[str(now - (len(lines) - i) * 1000), line] for i, line in enumerate(lines)]
    r = httpx.post(
        url + "/loki/api/v1/push",
        json={"streams": [{"stream": labels, "values": values}]},
        timeout=10.0,
    )
    assert r.status_code in (200, 204), f"push failed: {r.status_code} {r.text[:300]}"


def loki_count(url: str, service: str) -> int:
    """Lines of `service` in the last 5 minutes, straight from the API (test-side only)."""
    now = time.time_ns()
    try:
        r = httpx.get(
            url + "/loki/api/v1/query_range",
            params={
                "query": f'{{service="{service}"}}',
                "start": str(now - 300 * 10**9),
                "end": str(now + 10**9),
                "limit": "5000",
            },
            timeout=5.0,
        )
        streams = r.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return -1
    return sum(len(s["values"]) for s in streams)


# --- a Loki-API-shaped server for machines without Grafana Loki ---------------------------

_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_GO_ESCAPES.update({"\\": "\\", '"': '"'})


class LogQLError(ValueError):
    pass


def go_unquote(text: str, i: int) -> tuple[str, int]:
    """Read the Go interpreted string literal starting at text[i] == '"'; (value, next index).

    As strconv.Unquote: a raw newline ends nothing and is an error, as is an unknown escape.
    """
    assert text[i] == '"'
    out, i = [], i + 1
    while i < len(text):
        c = text[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\n":
            raise LogQLError("newline in string")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = text[i + 1 : i + 2]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 2
        elif e in ("x", "u", "U"):
            n = {"x": 2, "u": 4, "U": 8}[e]
            digits = text[i + 2 : i + 2 + n]
            if len(digits) != n or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise LogQLError("invalid escape")
            out.append(chr(int(digits, 16)))
            i += 2 + n
        elif e and e in "01234567":
            digits = text[i + 1 : i + 4]
            if len(digits) != 3 or not all(d in "01234567" for d in digits):
                raise LogQLError("invalid escape")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise LogQLError(f"invalid escape \\{e}")
    raise LogQLError("unterminated string")


def parse_logql(query: str) -> tuple[dict[str, str], list[str]]:
    """`{a="x", ...} |= "y" |= ...` → (equality matchers, contains-filters); else LogQLError."""
    i, n = 0, len(query)

    def skip() -> None:
        nonlocal i
        while i < n and query[i] in " \t":
            i += 1

    def expect(tok: str) -> None:
        nonlocal i
        skip()
        if not query.startswith(tok, i):
            raise LogQLError(f"syntax error: unexpected {query[i : i + 10]!r}, expecting {tok!r}")
        i += len(tok)

    def string() -> str:
        nonlocal i
        skip()
        if i >= n or query[i] != '"':
            raise LogQLError(f"syntax error: unexpected {query[i : i + 10]!r}, expecting STRING")
        value, i = go_unquote(query, i)
        return value

    matchers: dict[str, str] = {}
    expect("{")
    while True:
        skip()
        m = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(query, i)
        if not m:
            raise LogQLError("syntax error: expecting label name")
        i = m.end()
        expect("=")
        matchers[m.group(0)] = string()
        skip()
        if query.startswith(",", i):
            i += 1
            continue
        expect("}")
        break
    filters = []
    while True:
        skip()
        if i >= n:
            return matchers, filters
        expect("|=")
        filters.append(string())


class LokiStandIn:
    """Loki's push, query_range and ready endpoints, in memory, for the one query shape we send."""

    def __init__(self) -> None:
        self.streams: dict[tuple, list[tuple[int, str]]] = {}
        self.queries: list[dict] = []
        self._lock = threading.Lock()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/ready":
                    return self._send(200, b"ready\n", "text/plain")
                if parts.path != "/loki/api/v1/query_range":
                    return self._send(404, b"404 page not found\n", "text/plain")
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                standin.queries.append({**params, "auth": self.headers.get("Authorization")})
                status, body = standin.query_range(params)
                ctype = "application/json" if status == 200 else "text/plain; charset=utf-8"
                return self._send(status, body, ctype)

            def do_POST(self) -> None:
                if urlsplit(self.path).path != "/loki/api/v1/push":
                    return self._send(404, b"404 page not found\n", "text/plain")
                length = int(self.headers.get("Content-Length") or 0)
                payload = json.loads(self.rfile.read(length))
                with standin._lock:
                    for s in payload["streams"]:
                        key = tuple(sorted(s["stream"].items()))
                        entries = standin.streams.setdefault(key, [])
                        entries.extend((int(ts), line) for ts, line in s["values"])
                return self._send(204, b"")

        self.httpd, _ = serve(Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def query_range(self, params: dict[str, str]) -> tuple[int, bytes]:
        try:
            matchers, filters = parse_logql(params.get("query", ""))
        except LogQLError as exc:
            return 400, f"parse error at line 1: {exc}\n".encode()
        start, end = int(params["start"]), int(params["end"])
        limit = int(params.get("limit", 100))
        hits = []
        with self._lock:
            for key, entries in self.streams.items():
                labels = dict(key)
                if any(labels.get(k) != v for k, v in matchers.items()):
                    continue
                for ts, line in entries:
                    # Loki's range: start inclusive, end exclusive; `|=` is a substring test.
                    if start <= ts < end and all(f in line for f in filters):
                        hits.append((ts, line, key))
        hits.sort(key=lambda h: h[0], reverse=params.get("direction", "backward") == "backward")
        hits = hits[:limit]
        grouped: dict[tuple, list] = {}
        for ts, line, key in hits:
            grouped.setdefault(key, []).append([str(ts), line])
        result = [{"stream": dict(k), "values": v} for k, v in grouped.items()]
        body = {"status": "success", "data": {"resultType": "streams", "result": result}}
        return 200, json.dumps(body).encode()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
