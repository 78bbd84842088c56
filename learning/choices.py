"""Status vocabularies of the learning app, each with its table of allowed moves."""

from django.db import models


class PostmortemStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    PUBLISHED = "published", "Published"


# Published is final; a review can send the draft back for more work.
POSTMORTEM_TRANSITIONS: dict[str, frozenset[str]] = {
    PostmortemStatus.DRAFT: frozenset({PostmortemStatus.IN_REVIEW}),
    PostmortemStatus.IN_REVIEW: frozenset({PostmortemStatus.DRAFT, PostmortemStatus.PUBLISHED}),
    PostmortemStatus.PUBLISHED: frozenset(),
}


class PostmortemAuthor(models.TextChoices):
    CLAUDE = "claude", "Claude"
    OFFLINE = "offline", "Offline writer"


class FollowUpStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    WONT_DO = "wont_do", "Won't do"


FOLLOW_UP_OPEN = (FollowUpStatus.OPEN, FollowUpStatus.IN_PROGRESS)

FOLLOW_UP_TRANSITIONS: dict[str, frozenset[str]] = {
    FollowUpStatus.OPEN: frozenset(
        {FollowUpStatus.IN_PROGRESS, FollowUpStatus.DONE, FollowUpStatus.WONT_DO}
    ),
    FollowUpStatus.IN_PROGRESS: frozenset(
        {FollowUpStatus.OPEN, FollowUpStatus.DONE, FollowUpStatus.WONT_DO}
    ),
    FollowUpStatus.DONE: frozenset({FollowUpStatus.OPEN}),
    FollowUpStatus.WONT_DO: frozenset({FollowUpStatus.OPEN}),
}


class Priority(models.TextChoices):
    P1 = "P1", "P1 – next few days"
    P2 = "P2", "P2 – this sprint"
    P3 = "P3", "P3 – when there is room"
