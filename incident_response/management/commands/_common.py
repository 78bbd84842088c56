"""Shared by the management commands (the leading underscore keeps it from being one)."""

import re

from executor.models import Service


def service_named_in(text: str) -> str:
    """The one catalog service whose name the text mentions as a word, else ""."""
    words = set(re.findall(r"[a-z0-9][a-z0-9_.\-]*[a-z0-9]|[a-z0-9]", text.lower()))
    named = [n for n in Service.objects.values_list("name", flat=True) if n.lower() in words]
    return named[0] if len(named) == 1 else ""
