"""Choose the writer: Claude when a key is set, the offline writer otherwise or on failure."""

from dataclasses import dataclass, field

from django.conf import settings

from ..choices import PostmortemAuthor
from . import claude, offline


@dataclass
class Draft:
    document: dict
    author: str
    model_id: str = ""
    notes: list[str] = field(default_factory=list)


def write_draft(facts: dict) -> Draft:
    if not settings.ANTHROPIC_API_KEY:
        return Draft(offline.write(facts), PostmortemAuthor.OFFLINE.value)
    try:
        document, model_id = claude.write(facts)
    except claude.ClaudeFailed as exc:
        return Draft(
            offline.write(facts),
            PostmortemAuthor.OFFLINE.value,
            notes=[f"{exc}; fell back to the offline writer"],
        )
    return Draft(document, PostmortemAuthor.CLAUDE.value, model_id=model_id)
