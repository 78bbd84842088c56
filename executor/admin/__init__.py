"""Admin of the executor: the approval queue, the recorded runs and decisions, the catalog.

Importing the modules registers their admins.
"""

from . import catalog, queue, records, safe_mode  # noqa: F401
