"""Fixtures for the executor tests: real Prometheus and Loki (started once), fake Slack.

Prometheus and Loki each run on free 127.0.0.1 ports with its config and data in a temp dir and is
stopped at the end of the session. A missing binary skips (fails under CI=true).
"""

from collections.abc import Iterator

import pytest

from testing.fakes import loki as loki_fakes
from testing.fakes import prometheus as prometheus_fakes
from testing.fakes.slack import FakeSlack, slack_server
from testing.processes import Proc
from testing.servers import SilentServer
from testing.services import need_service


@pytest.fixture(scope="session")
def exporter() -> Iterator[prometheus_fakes.Exporter]:
    server = prometheus_fakes.Exporter()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory, exporter) -> Iterator[Proc]:
    binary = prometheus_fakes.prometheus_binary()
    if not binary:
        need_service("Prometheus", "no prometheus binary (apt-get install prometheus)")
    workdir = tmp_path_factory.mktemp("prometheus")
    try:
        proc = prometheus_fakes.start_prometheus(binary, workdir, exporter.port)
    except (AssertionError, RuntimeError, OSError) as exc:
        need_service("Prometheus", f"{binary} did not start: {exc}")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def loki_server(tmp_path_factory) -> Iterator[Proc]:
    binary, detail = loki_fakes.loki_binary()
    if not binary:
        # Grafana Loki has no Debian package (Debian's `loki` is a genetics program),
        # so this is a skip even under CI; LOKI_BIN points at a Grafana Loki binary.
        pytest.skip(f"Grafana Loki is not installed: {detail}")
    workdir = tmp_path_factory.mktemp("loki")
    try:
        proc = loki_fakes.start_loki(binary, workdir)
    except (AssertionError, RuntimeError, OSError) as exc:
        need_service("Loki", f"{binary} (Grafana Loki {detail}) did not start: {exc}")
    proc.extra["version"] = detail
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def loki_standin() -> Iterator[loki_fakes.LokiStandIn]:
    server = loki_fakes.LokiStandIn()
    yield server
    server.stop()


@pytest.fixture(params=["grafana-loki", "loki-api-stand-in"])
def loki_url(request) -> str:
    """Each log test runs against Grafana Loki (when installed) and the Loki-API stand-in."""
    if request.param == "grafana-loki":
        return request.getfixturevalue("loki_server").url
    return request.getfixturevalue("loki_standin").url


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.stop()


@pytest.fixture
def no_slack_notifications(settings) -> None:
    """Decisions are posted nowhere: the only Slack posts a test sees are its actions'."""
    settings.SLACK_WEBHOOK_URL = ""
    settings.SLACK_BOT_TOKEN = ""


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A local server that answers like Slack, counting posts."""
    with slack_server() as fake:
        yield fake
