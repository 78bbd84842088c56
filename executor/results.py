"""What a connector hands back, and the errors it may raise.

Connectors never return invented numbers: they return what the target said,
or raise one of these, which the engine turns into a recorded outcome.
"""

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepResult:
    outcome: str  # "ok" or "warn" (errors are raised, not returned)
    summary: str  # one readable line, shown in reports and the UI
    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""  # longer output, bounded by the engine


def time_left(deadline: float) -> float:
    """Seconds until `deadline` (a time.monotonic() value); StepTimeout once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise StepTimeout("the step deadline passed")
    return left


class StepError(Exception):
    """The target answered with an error, or could not be reached."""


class StepTimeout(StepError):
    """The target did not answer within the step's deadline."""


class StepBlocked(Exception):
    """The step may not run: no such target, wrong kind, refused parameter."""
