"""An incident's timeline as Markdown, CSV or JSON, for postmortems written elsewhere.

The words are the timeline's own (incidents.event_text), so an export reads like the page.
"""

import csv
import io
import json

from incidents.event_text import event_text
from incidents.models import Incident

FORMATS = {
    "md": "text/markdown; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def _rows(incident: Incident) -> list[dict]:
    events = incident.timeline.select_related("actor").order_by("created_at", "id")
    return [
        {
            "at": e.created_at.isoformat(),
            "kind": e.kind,
            "who": e.who,
            "text": event_text(e),
        }
        for e in events
    ]


def _markdown_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def export_timeline(incident: Incident, fmt: str) -> str:
    rows = _rows(incident)
    if fmt == "json":
        return json.dumps(
            {"incident": {"id": incident.pk, "title": incident.title}, "events": rows}, indent=2
        )
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=["at", "kind", "who", "text"])
        writer.writeheader()
        for row in rows:
            # A leading = + - @ would run as a formula in a spreadsheet.
            writer.writerow({k: ("'" + v if v[:1] in "=+-@" else v) for k, v in row.items()})
        return out.getvalue()
    if fmt == "md":
        lines = [
            f"# Timeline of incident #{incident.pk}: {_markdown_cell(incident.title)}",
            "",
            "| When (UTC) | Who | What |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {r['at'][:19].replace('T', ' ')} | {_markdown_cell(r['who'])} | "
            f"{_markdown_cell(r['text'])} |"
            for r in rows
        ]
        return "\n".join(lines) + "\n"
    raise ValueError(f"unknown format {fmt!r}")
