from django import forms
from django.contrib.auth import get_user_model

from .choices import Priority
from .models import SECTIONS


class PostmortemForm(forms.Form):
    """The editable sections, Markdown each."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, label in SECTIONS:
            self.fields[name] = forms.CharField(
                label=label, required=False, widget=forms.Textarea(attrs={"rows": 5})
            )


class FollowUpForm(forms.Form):
    title = forms.CharField(max_length=200)
    owner = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
    )
    due_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.P2)
    external_url = forms.URLField(required=False, assume_scheme="https", label="Ticket link")


class HandoffForm(forms.Form):
    to_user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        label="Hand over to",
    )
    known_risks = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Known risks"
    )
