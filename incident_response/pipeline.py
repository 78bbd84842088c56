"""The hand-offs between the stages of an incident: the only code that calls "up".

Apps depend one way, incidents <- runbooks <- executor. A lower app announces that
its stage is done through a signal it owns; this module listens and starts the next
stage. Nothing else imports a higher app from a lower one (import-linter holds it).
"""


def connect() -> None:
    """Wire the lower apps' signals to the next stage; called once from AppConfig.ready."""
