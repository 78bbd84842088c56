"""Action families. Importing this package registers every spec."""

from . import cache, database, http, notify, observability, service  # noqa: F401
