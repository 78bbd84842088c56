"""The trust boundary: re-validate a stored runbook and run its checks.

Nothing from the artifact is trusted: it is read back from storage and checked
against the sha256 the database recorded, validated against the contract, and
every step is looked up in the registry, its parameters validated and its target
resolved before anything runs. Checks run in parallel, each with a deadline.
"""

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from incidents.storable import clean_payload, clean_text

from .choices import CheckOutcome, StepKind
from .registry import ActionSpec, get_spec
from .results import StepBlocked, StepError, StepResult, StepTimeout
from .targets import ResolvedTarget, TargetScope, labelled, resolve_target, target_scope


@dataclass
class PreparedStep:
    """A step after the boundary's checks: runnable (spec and target) or blocked (reason)."""

    step_id: str
    action: str
    params: dict
    position: int
    spec: ActionSpec | None = None
    target: ResolvedTarget | None = None
    blocked: str = ""


@dataclass
class StepOutcome:
    step: PreparedStep
    outcome: str
    summary: str
    output: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    duration_ms: int = 0


def prepare_step(
    *,
    step: dict,
    position: int,
    kind: StepKind,
    service: str = "",
    scope: TargetScope | None = None,
) -> PreparedStep:
    """Look a step up in the registry, validate its params and resolve its target.

    Pass `scope` (target_scope(service)) when preparing many steps: one lookup for all.
    """
    step_id = str(step.get("id", f"step_{position}"))[:64]
    action = str(step.get("action", ""))[:64]
    params = step.get("params") if isinstance(step.get("params"), dict) else {}
    prepared = PreparedStep(step_id=step_id, action=action, params=params, position=position)
    spec = get_spec(action)
    if spec is None:
        prepared.blocked = f"{action!r} is not an allowed action in this executor's registry"
        return prepared
    if spec.kind != kind:
        prepared.blocked = f"{action} is not a {kind} step (registered as {spec.kind})"
        return prepared
    if spec.normalize is not None:
        scope = scope or target_scope(service)
        try:
            params = prepared.params = spec.accept(params, scope)
        except StepBlocked as exc:
            prepared.blocked = f"refused parameters: {exc}"
            return prepared
    problems = spec.validate_params(params)
    if problems:
        prepared.blocked = "refused parameters: " + "; ".join(problems)
        return prepared
    prepared.spec = spec
    try:
        prepared.target = resolve_target(
            name=params.get("target"), kinds=spec.target_kinds, service=service, scope=scope
        )
    except StepBlocked as exc:
        prepared.blocked = str(exc)
    return prepared


def _bounded(text: str) -> str:
    limit = settings.EXECUTOR_OUTPUT_LIMIT
    return (
        text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit} more characters)"
    )


def run_step(step: PreparedStep, *, timeout: float) -> StepOutcome:
    """Run one prepared step in this thread; every failure becomes an outcome."""
    if step.blocked or step.spec is None:
        return StepOutcome(step, CheckOutcome.BLOCKED, step.blocked or "not runnable")
    started = time.monotonic()
    try:
        result: StepResult = step.spec.run(step.params, step.target, started + timeout)
        outcome = CheckOutcome.WARN if result.outcome == "warn" else CheckOutcome.OK
        summary, output, data = result.summary, result.text, result.data
    except StepBlocked as exc:
        outcome, summary, output, data = CheckOutcome.BLOCKED, str(exc), "", {}
    except StepTimeout as exc:
        outcome, summary, output, data = CheckOutcome.TIMEOUT, str(exc) or "timed out", "", {}
    except StepError as exc:
        outcome, summary, output, data = CheckOutcome.ERROR, str(exc), "", {}
    except Exception as exc:  # a connector bug must not take the run down
        outcome, summary, output, data = (
            CheckOutcome.ERROR,
            f"{type(exc).__name__}: {exc}",
            "",
            {},
        )
    if step.target is not None:
        # Whatever a connector or a driver's error said, no credential leaves this function.
        summary, output = step.target.scrub(summary), step.target.scrub(output)
        data = json.loads(step.target.scrub(json.dumps(data, default=str)))
        summary = labelled(step.target, summary)  # "not about <service>" when it is not
    return StepOutcome(
        step,
        outcome,
        # What a target answered may hold what PostgreSQL will not store (a NUL in a log
        # line): cleaned here, or the whole record of the run would be refused.
        clean_text(summary)[:1000],
        _bounded(clean_text(output)),
        clean_payload(data),
        int((time.monotonic() - started) * 1000),
    )


# Checks run on these threads, kept for the process's life, rather than on new ones each
# run (each new thread waits its turn for the interpreter before it starts, on a worker
# busy with its own task). Threads start on first use, not at import. A slot is taken
# while its check runs; a check stuck past its deadline keeps its slot, and once too few
# are free a run gets threads of its own, as every run did before.
_SHARED_WIDTH = 16
_shared = ThreadPoolExecutor(max_workers=_SHARED_WIDTH, thread_name_prefix="check")
_shared_busy = 0
_shared_lock = threading.Lock()


def _take_shared(n: int) -> bool:
    global _shared_busy
    with _shared_lock:
        if _shared_busy + n > _SHARED_WIDTH:
            return False
        _shared_busy += n
        return True


def _free_shared(_: Future) -> None:
    global _shared_busy
    with _shared_lock:
        _shared_busy -= 1


class PendingChecks:
    """Checks started by `start_checks`; `outcomes()` waits for them (each bounded by its
    timeout), so the caller can do other work while they run."""

    def __init__(self, steps: list[PreparedStep], timeout: float) -> None:
        self.steps, self.timeout = steps, timeout
        self.results: dict[int, StepOutcome] = {}
        runnable = []
        for s in steps:
            if s.blocked or s.spec is None:
                self.results[s.position] = run_step(s, timeout=timeout)  # records it as blocked
            else:
                runnable.append(s)
        self.futures: list[tuple[PreparedStep, Future]] = []
        self.own_pool: ThreadPoolExecutor | None = None
        self.started = time.monotonic()
        self.waves = 1
        if not runnable:
            return
        workers = min(settings.EXECUTOR_MAX_PARALLEL_CHECKS, len(runnable))
        # The shared threads only for a run that fits in one wave: their number bounds
        # how many run at once only in a pool of the run's own width.
        if len(runnable) <= workers and _take_shared(len(runnable)):
            for s in runnable:
                future = _shared.submit(run_step, s, timeout=timeout)
                future.add_done_callback(_free_shared)
                self.futures.append((s, future))
        else:
            self.own_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check")
            self.futures = [
                (s, self.own_pool.submit(run_step, s, timeout=timeout)) for s in runnable
            ]
            # Steps beyond the pool's width start late: each wave gets its own timeout.
            self.waves = -(-len(runnable) // workers)

    def outcomes(self) -> list[StepOutcome]:
        # Plus a little grace for the connector to report a timeout itself.
        hard_deadline = self.started + self.waves * self.timeout + 1.0
        for s, fut in self.futures:
            try:
                self.results[s.position] = fut.result(
                    timeout=max(0.0, hard_deadline - time.monotonic())
                )
            except FutureTimeout:
                self.results[s.position] = StepOutcome(
                    s,
                    CheckOutcome.TIMEOUT,
                    f"no answer within {self.timeout:.0f}s",
                    duration_ms=int((time.monotonic() - self.started) * 1000),
                )
        if self.own_pool is not None:
            # Stuck connector threads are abandoned, not waited for.
            self.own_pool.shutdown(wait=False, cancel_futures=True)
        return [self.results[s.position] for s in self.steps]


def start_checks(steps: list[PreparedStep], *, timeout: float | None = None) -> PendingChecks:
    """Start the runnable steps in parallel, each bounded by `timeout`; blocked ones are
    recorded at once and not run."""
    return PendingChecks(steps, timeout or settings.EXECUTOR_CHECK_TIMEOUT)


def run_checks(steps: list[PreparedStep], *, timeout: float | None = None) -> list[StepOutcome]:
    """Run runnable steps in parallel, each bounded by `timeout`; blocked ones are not run."""
    return start_checks(steps, timeout=timeout).outcomes()
