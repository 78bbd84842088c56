from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"
    verbose_name = "Incidents"

    def ready(self) -> None:
        # Eagerly, not on the first request: threaded workers would race on a lazy load.
        from .ingest.changes import load_change_parsers
        from .ingest.registry import load_parsers

        load_parsers()
        load_change_parsers()
