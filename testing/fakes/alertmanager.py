"""Real Alertmanager for the tests, sending its webhooks to our live server."""

import shutil
import subprocess
from pathlib import Path

import httpx

from testing.processes import Proc
from testing.services import free_port, port_open
from testing.waiting import wait_until

CONFIG = """
route:
  receiver: incident-response
  group_by: ["alertname"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incident-response
    webhook_configs:
      - url: "{url}"
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: "{token}"
"""


def alertmanager_binary() -> str | None:
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def start_alertmanager(binary: str, workdir: Path, *, webhook_url: str, token: str) -> Proc:
    """Alertmanager on a free loopback port, grouping by alertname every second and
    posting to `webhook_url` with a bearer token; returns once it is ready."""
    port = free_port()
    config = workdir / "alertmanager.yml"
    config.write_text(CONFIG.format(url=webhook_url, token=token))
    log = workdir / "alertmanager.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    am = Proc(f"http://127.0.0.1:{port}", proc, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"alertmanager exited: {am.log_tail()}")
        if not port_open("127.0.0.1", port):
            return False
        return httpx.get(f"{am.url}/-/ready", timeout=2).status_code == 200

    try:
        wait_until(ready, timeout=30, what="Alertmanager to be ready")
    except BaseException:
        am.stop()
        raise
    return am
