from django.apps import AppConfig


class ExecutorConfig(AppConfig):
    name = "executor"
    verbose_name = "Executor"

    def ready(self) -> None:
        # Fill the registry (each module under executor.actions registers its specs), and
        # register the tasks in every process: the services queue them by name.
        from . import actions, tasks  # noqa: F401
        from .safe_mode import connect_signals

        connect_signals()
