"""Forms of the notification settings: a template's wording (checked by the sandbox at save,
errors on the field with their line), its live preview, and one staff member's preference per
event. The services re-check everything; the forms put the errors next to the fields."""

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin

from . import services
from .models import STAFF_CHANNELS, TEMPLATE_CHANNELS, Event, Priority
from .offered import events_offered
from .rendering import FILTERS, MAX_SOURCE, VARIABLES


class TemplateForm(BootstrapFormMixin, forms.Form):
    event = forms.ChoiceField(label=_("Event"), choices=Event.choices)
    channel = forms.ChoiceField(label=_("Channel"), choices=[(c.value, c.label) for c in TEMPLATE_CHANNELS])
    language = forms.ChoiceField(label=_("Language"), choices=settings.LANGUAGES)
    subject = forms.CharField(label=_("Subject"), max_length=200, required=False, strip=False)
    body = forms.CharField(label=_("Body"), max_length=MAX_SOURCE, strip=False,
                           widget=forms.Textarea(attrs={"rows": 8}))
    sms_template_code = forms.CharField(
        label=_("SMS / WeChat template code"), max_length=64, required=False,
        help_text=_("The code of the template the SMS provider or WeChat approved; its parameters are the "
                    "variables the body uses, in order."),
    )

    # The preview renders whatever is there; only saving insists on a provider's template code.
    require_code = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event"].choices = [(e.value, e.label) for e in events_offered()]
        self.fields["body"].help_text = _(
            "Variables: %(names)s. Filters: %(filters)s. Tags: {%% if %%} … {%% endif %%} only."
        ) % {"names": ", ".join(VARIABLES), "filters": ", ".join(sorted(FILTERS))}

    def clean(self):
        cleaned = super().clean()
        if any(name in self.errors for name in ("subject", "body", "sms_template_code")):
            return cleaned
        errors = services.template_clean(
            channel=cleaned.get("channel", ""), subject=(cleaned.get("subject") or "").strip(),
            body=cleaned.get("body") or "", sms_template_code=(cleaned.get("sms_template_code") or "").strip(),
        )
        if not self.require_code:
            errors.pop("sms_template_code", None)
        for field, message in errors.items():
            self.add_error(field, message)
        return cleaned


class PreviewForm(TemplateForm):
    require_code = False


class PreferenceForm(BootstrapFormMixin, forms.Form):
    """One event's row on the preferences page (the form's prefix is the event)."""

    channels = forms.MultipleChoiceField(
        label=_("Channels"), required=False, widget=forms.CheckboxSelectMultiple,
        choices=[(c.value, c.label) for c in STAFF_CHANNELS],
    )
    min_priority = forms.ChoiceField(label=_("Minimum priority"), choices=Priority.choices)
    quiet_start = forms.TimeField(label=_("Quiet from"), required=False,
                                  widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))
    quiet_end = forms.TimeField(label=_("Quiet until"), required=False,
                                widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"))

    def __init__(self, *args, event, **kwargs):
        self.event = event
        super().__init__(*args, prefix=event, **kwargs)

    @property
    def event_label(self):
        return Event(self.event).label

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        for field, message in services.preference_clean(
            channels=cleaned.get("channels") or [], min_priority=cleaned.get("min_priority"),
            quiet_start=cleaned.get("quiet_start"), quiet_end=cleaned.get("quiet_end"),
        ).items():
            self.add_error(field, message)
        return cleaned

    def row(self):
        data = self.cleaned_data
        return {"channels": list(data["channels"]), "min_priority": data["min_priority"],
                "quiet_start": data["quiet_start"], "quiet_end": data["quiet_end"]}
