"""Real Prometheus for the tests, and the exporter it scrapes.

- `Exporter`: a /metrics endpoint whose gauges the test sets, so Prometheus
  scrapes values we control (a breach is a real value, not an invented one).
- `start_prometheus`: Debian's /usr/bin/prometheus on a free port, scraping
  itself and the exporter every second, storage in a temp dir; optionally with
  alerting rules, sent to an Alertmanager.
"""

import os
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from testing.processes import Proc, answers
from testing.servers import serve
from testing.services import free_port
from testing.waiting import wait_until


class Exporter:
    """Serves `/metrics` in the Prometheus text format from values the test sets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, tuple], float] = {}
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200 if self.path == "/metrics" else 404)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd, self.thread = serve(Handler)
        self.port = self.httpd.server_address[1]

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def render(self) -> str:
        with self._lock:
            items = sorted(self._values.items())
        out, typed = [], set()
        for (name, labels), value in items:
            if name not in typed:
                out.append(f"# TYPE {name} gauge")
                typed.add(name)
            inner = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append(f"{name}{{{inner}}} {value!r}" if inner else f"{name} {value!r}")
        return "\n".join(out) + "\n"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def prometheus_binary() -> str | None:
    return os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus")


def prometheus_version(binary: str) -> str:
    out = subprocess.run(
        [binary, "--version"], capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL
    )
    return (out.stdout or out.stderr).splitlines()[0] if (out.stdout or out.stderr) else ""


def _config(port: int, exporter_port: int, rules: Path | None, alertmanager: str | None) -> str:
    lines = [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "  evaluation_interval: 1s",
    ]
    if rules:
        lines += ["rule_files:", f"  - {rules}"]
    if alertmanager:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - static_configs:",
            f"        - targets: ['{urlsplit(alertmanager).netloc}']",
        ]
    lines += [
        "scrape_configs:",
        "  - job_name: prometheus",
        "    static_configs:",
        f"      - targets: ['127.0.0.1:{port}']",
        "  - job_name: exporter",
        "    static_configs:",
        f"      - targets: ['127.0.0.1:{exporter_port}']",
    ]
    return "\n".join(lines) + "\n"


def _api(proc: Proc, path: str) -> dict:
    if proc.proc.poll() is not None:
        raise AssertionError(f"prometheus exited with {proc.proc.returncode}:\n{proc.log_tail()}")
    try:
        response = httpx.get(proc.url + path, timeout=2)
        return response.json()["data"] if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError, KeyError):
        return {}


def start_prometheus(
    binary: str,
    workdir: Path,
    exporter_port: int,
    *,
    rules: str | None = None,
    alertmanager: str | None = None,
) -> Proc:
    """Prometheus on a free 127.0.0.1 port, scraping itself and the exporter every second.

    With `rules` (a rule file's YAML) it evaluates them every second; with `alertmanager`
    (a base URL) it sends their alerts there, re-sending every second. It returns once it
    has scraped both jobs and, when asked, loaded the rules and found the Alertmanager.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    rules_file = None
    if rules is not None:
        rules_file = workdir / "rules.yml"
        rules_file.write_text(rules)
    config = workdir / "prometheus.yml"
    config.write_text(_config(port, exporter_port, rules_file, alertmanager))
    log = workdir / "prometheus.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                # The base of every alert's generatorURL.
                f"--web.external-url={url}",
                # Send (and re-send) alerts to Alertmanager every second, not every minute.
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    p = Proc(url, proc, log, extra={"version": prometheus_version(binary)})

    def rules_loaded() -> bool:
        groups = _api(p, "/api/v1/rules").get("groups", [])
        return sum(len(g["rules"]) for g in groups) > 0

    def alertmanager_found() -> bool:
        active = _api(p, "/api/v1/alertmanagers").get("activeAlertmanagers", [])
        return any(urlsplit(a["url"]).netloc == urlsplit(alertmanager).netloc for a in active)

    try:
        wait_until(lambda: answers(p, "/-/ready"), timeout=60, what="Prometheus /-/ready")
        # The first scrape of both jobs: `up` has a sample (value 1) for each.
        wait_until(
            lambda: len([s for s in prom_vector(p.url, "up") if s[1] == 1.0]) == 2,
            timeout=30,
            what="the first scrape of both jobs",
        )
        if rules is not None:
            wait_until(rules_loaded, timeout=60, what="Prometheus to load the alerting rules")
        if alertmanager is not None:
            wait_until(alertmanager_found, timeout=30, what="Prometheus to find Alertmanager")
    except BaseException:
        p.stop()
        raise
    return p


def prom_vector(url: str, query: str) -> list[tuple[dict, float]]:
    """An instant query straight against the API (test-side synchronisation only)."""
    try:
        r = httpx.post(url + "/api/v1/query", data={"query": query}, timeout=2.0)
        data = r.json()["data"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return [(item["metric"], float(item["value"][1])) for item in data]
