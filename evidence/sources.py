"""What the context stage reads from outside the database, as an interface.

Metrics come from the executor's Prometheus connector and logs from its Loki
connector, with the catalog's golden-signal queries; the evidence app sits below
the executor and never imports it: the pipeline installs the executor's
implementation (`executor.evidence_source`) when Django starts.

`for_service` runs in the calling thread (it reads the catalog); the readers it
returns hold everything they need, so the collectors' threads never touch the
database.
"""

from typing import Protocol


class ServiceReaders(Protocol):
    service: str
    # Signal name (errors, latency, traffic, saturation) -> PromQL, from the catalog.
    signals: dict[str, str]
    # The services this one depends on, from the catalog.
    dependencies: list[str]

    def metric_range(
        self, expr: str, *, start: float, end: float, step: float, deadline: float
    ) -> list[tuple[float, float]] | None:
        """One series of (unix time, value) over [start, end]; None without a metrics target."""

    def log_lines(
        self, *, start: float, end: float, limit: int, deadline: float
    ) -> list[tuple[float, str]] | None:
        """Error lines over [start, end] as (unix time, line); None without a logs target."""

    def recent_deploys(self, *, since: float, deadline: float) -> list[dict] | None:
        """Deploys read from where the service runs (image moves of its Fly apps) since
        `since`: dicts with service, version, previous_version, started_at, finished_at
        (datetimes), external_id and description; None when it runs nowhere we can read.
        Optional: readers without it have none."""

    def scrub(self, text: str) -> str:
        """`text` without any secret the targets know."""


class Observability(Protocol):
    def for_service(self, service: str) -> ServiceReaders: ...


_installed: Observability | None = None


def install(source: Observability | None) -> None:
    global _installed
    _installed = source


def observability() -> Observability | None:
    return _installed
