from django.apps import AppConfig


class ExecutorConfig(AppConfig):
    name = "executor"
    verbose_name = "Executor"

    def ready(self) -> None:
        # Fill the registry: each module under executor.actions registers its specs.
        from . import actions  # noqa: F401
