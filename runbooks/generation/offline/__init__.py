"""The deterministic offline planner: a runbook from keywords, with no network.

It scores the incident text against a few incident scenarios, picks the best,
and assembles checks and actions from the executor's registry: only those
that have a target for the incident's service (`catalog.step_targets`, the view
Claude gets too). The same input always gives the same output.

- `vocabulary`: the keywords and phrases, data only;
- `facts`: what the text says (service, table, duration, cache key, system);
- `playbooks`: the scenarios, each with the builder that picks its checks and actions;
- `steps`: the check and action entries the playbooks build;
- `offered`: the only access to the executor (target kinds, offered steps, params);
- `planner`: classification, confidence and the runbook document.
"""

from .planner import plan_offline

__all__ = ["plan_offline"]
