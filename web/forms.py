"""Forms of the ops web UI: they parse input; the services decide what is allowed."""

from django import forms
from django.contrib.auth import get_user_model

from incidents.choices import ROLE_FIELDS, SEVERITIES, IncidentStatus, Severity
from incidents.models import StatusUpdate


class DeclareForm(forms.Form):
    title = forms.CharField(
        max_length=200,
        required=False,
        label="What is broken?",
        help_text="One line. Left empty, the first line of the details is used.",
        widget=forms.TextInput(attrs={"placeholder": "Checkout returns 502s", "autofocus": True}),
    )
    description = forms.CharField(
        required=False,
        label="Details",
        help_text="What you see, since when, what changed. The runbook is written from this.",
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    # No default: the declarer picks one on purpose, with the policy beside each choice.
    severity = forms.ChoiceField(choices=Severity.choices, widget=forms.RadioSelect)
    service = forms.CharField(
        max_length=100,
        required=False,
        help_text="As the service catalog names it.",
        widget=forms.TextInput(attrs={"list": "service-names", "autocomplete": "off"}),
    )

    def clean(self) -> dict:
        data = super().clean()
        if not (data.get("title") or "").strip() and not (data.get("description") or "").strip():
            self.add_error("title", "Say what is broken: a title or some details are required.")
        return data

    @staticmethod
    def policies() -> list[tuple[str, str, object]]:
        return [(value, label, SEVERITIES[value]) for value, label in Severity.choices]


class NoteForm(forms.Form):
    text = forms.CharField(
        label="Add a note",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What did you see or do?"}),
        error_messages={"required": "A note needs some text."},
    )


class StatusUpdateForm(forms.Form):
    audience = forms.ChoiceField(
        label="Template", choices=StatusUpdate.Audience.choices, initial="internal"
    )
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 7}),
        error_messages={"required": "A status update needs some text."},
    )


SHORT_ROLE_LABELS = {
    "commander": "Commander",
    "comms_lead": "Comms lead",
    "tech_lead": "Tech lead",
    "scribe": "Scribe",
}


class RolesForm(forms.Form):
    """One select per role; empty means nobody holds it."""

    def __init__(self, *args, users=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        queryset = get_user_model().objects.filter(is_active=True).order_by("username")
        for role, label in ROLE_FIELDS.items():
            field = forms.ModelChoiceField(
                queryset=queryset, required=False, label=SHORT_ROLE_LABELS[role], empty_label="—"
            )
            field.help_text = label
            if users is not None:
                # The page loaded the users already: no query per select when rendering.
                field.choices = [("", "—")] + [(u.pk, u.get_username()) for u in users]
            self.fields[role] = field


class SeverityForm(forms.Form):
    severity = forms.ChoiceField(choices=Severity.choices)


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=IncidentStatus.choices)


class ListFilterForm(forms.Form):
    """The list page's filters; anything unparseable falls back to the default.

    The page writes the controls itself from these choices and the filters applied:
    Django's widget templates cost more than the rest of the filter bar.
    """

    STATUS_CHOICES = [("open", "Open"), ("all", "All"), *IncidentStatus.choices]
    SEVERITY_CHOICES = [("", "Any severity"), *Severity.choices]

    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    severity = forms.ChoiceField(required=False, choices=SEVERITY_CHOICES)
    service = forms.CharField(required=False, max_length=100)
    mine = forms.BooleanField(required=False, label="Mine")
    q = forms.CharField(required=False, max_length=200, label="Search")
