"""Admin of the incidents app: incidents and their timeline, alert sources and alerts.

Importing the modules registers their admins; `mixins` holds what every app's admin shares.
"""

from . import alerts, incidents  # noqa: F401
