"""Source severities → SEV1..SEV4: the source's own mapping first, then common defaults."""

from incidents.choices import Severity

DEFAULTS: dict[str, str] = {
    # Alertmanager / Prometheus conventions and PagerDuty's four levels.
    "critical": Severity.SEV1,
    "page": Severity.SEV1,
    "fatal": Severity.SEV1,
    "emergency": Severity.SEV1,
    "high": Severity.SEV2,
    "error": Severity.SEV2,
    "major": Severity.SEV2,
    "warning": Severity.SEV3,
    "warn": Severity.SEV3,
    "medium": Severity.SEV3,
    "minor": Severity.SEV3,
    "low": Severity.SEV4,
    "info": Severity.SEV4,
    "none": Severity.SEV4,
    # Datadog monitor priorities.
    "p1": Severity.SEV1,
    "p2": Severity.SEV2,
    "p3": Severity.SEV3,
    "p4": Severity.SEV4,
    "p5": Severity.SEV4,
    # Our own vocabulary passes through.
    "sev1": Severity.SEV1,
    "sev2": Severity.SEV2,
    "sev3": Severity.SEV3,
    "sev4": Severity.SEV4,
}

RANK = {Severity.SEV1: 1, Severity.SEV2: 2, Severity.SEV3: 3, Severity.SEV4: 4}


def severity_normalise(raw: str, mapping: dict | None = None) -> str:
    value = (raw or "").strip().lower()
    if isinstance(mapping, dict):
        for k, v in mapping.items():
            if isinstance(k, str) and k.strip().lower() == value and v in Severity.values:
                return v
    return DEFAULTS.get(value, Severity.SEV3)
