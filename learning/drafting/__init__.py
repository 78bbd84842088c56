"""Writing the postmortem draft: the facts of the incident, then Claude or the offline writer."""
