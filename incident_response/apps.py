from django.apps import AppConfig


class PipelineConfig(AppConfig):
    """The project package as an app: the pipeline that hands work between the stages."""

    name = "incident_response"
    verbose_name = "Pipeline"

    def ready(self) -> None:
        from . import pipeline

        pipeline.connect()
