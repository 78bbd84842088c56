"""What the runbooks stage announces to the next one (see incidents.signals)."""

from django.dispatch import Signal

# A runbook version was requested (queued): generate it.
# Arguments: runbook_id (int).
runbook_requested = Signal()

# A runbook version is stored and ready: its checks can run.
# Arguments: runbook_id (int).
runbook_ready = Signal()
