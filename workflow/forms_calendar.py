"""The business calendar page's forms: the calendar (name, time zone, 24×7, default, each
weekday's hours typed as "09:00-12:00, 13:30-18:00") and the holiday file upload. They turn
what people type into the services' arguments; workflow.services validates the calendar."""

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from scrm.forms import BootstrapFormMixin

from . import sla
from .models import WEEKDAY_LABELS
from .services import MAX_IMPORT_BYTES

_SEPARATORS = re.compile(r"[,，;；、\s]+")
_DASHES = re.compile(r"\s*[-–—~～至]\s*")


def hours_text(hours):
    """Stored intervals ([["09:00", "12:00"], …]) as the text the form shows."""
    return ", ".join(f"{start}-{end}" for start, end in hours or [])


def hours_from_text(text):
    """The text of one weekday ("09:00-12:00, 13:30-18:00", empty for a day off) as intervals;
    the services check the times themselves."""
    text = _DASHES.sub("-", (text or "").strip())
    if not text:
        return []
    intervals = []
    for part in _SEPARATORS.split(text):
        if not part:
            continue
        pieces = part.split("-")
        if len(pieces) != 2 or not all(pieces):
            raise forms.ValidationError(_("Write each interval as start-end, separated by commas: "
                                          "09:00-12:00, 13:30-18:00."))
        intervals.append(pieces)
    return intervals


class CalendarForm(BootstrapFormMixin, forms.Form):
    name = forms.CharField(label=_("name"), max_length=60)
    time_zone = forms.CharField(label=_("time zone"), max_length=64, initial="Asia/Shanghai",
                                help_text=_("An IANA time zone, for example Asia/Shanghai."))
    is_24x7 = forms.BooleanField(label=_("24×7"), required=False,
                                 help_text=_("Every moment counts: no working hours, no holidays."))
    is_default = forms.BooleanField(label=_("default calendar"), required=False,
                                    help_text=_("SLA policies count in it unless they name another calendar."))

    def __init__(self, *args, calendar=None, **kwargs):
        if calendar is not None:
            initial = {"name": calendar.name, "time_zone": calendar.time_zone, "is_24x7": calendar.is_24x7,
                       "is_default": calendar.is_default}
            initial.update({day: hours_text(calendar.weekly_hours.get(day)) for day in sla.WEEKDAYS})
            kwargs.setdefault("initial", initial)
        super().__init__(*args, **kwargs)
        for day, label in zip(sla.WEEKDAYS, WEEKDAY_LABELS, strict=True):
            self.fields[day] = forms.CharField(
                label=label, required=False, max_length=200,
                initial="09:00-12:00, 13:30-18:00" if calendar is None and day not in ("sat", "sun") else "",
                widget=forms.TextInput(attrs={"class": "form-control", "placeholder": _("day off")}))

    def day_fields(self):
        return [self[day] for day in sla.WEEKDAYS]

    def clean(self):
        data = super().clean()
        weekly = {}
        for day in sla.WEEKDAYS:
            try:
                weekly[day] = hours_from_text(data.get(day))
            except forms.ValidationError as exc:
                self.add_error(day, exc)
        data["weekly_hours"] = weekly
        return data

    def service_kwargs(self):
        data = self.cleaned_data
        return {"name": data["name"], "time_zone": data["time_zone"].strip(), "is_24x7": data["is_24x7"],
                "is_default": data["is_default"], "weekly_hours": data["weekly_hours"]}

    def add_service_errors(self, exc):
        """The service's ValidationError on the fields it names; weekly hours above the days."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc)
            return
        for field, errors in exc.error_dict.items():
            self.add_error(field if field in ("name", "time_zone") else None, errors)


class CalendarImportForm(BootstrapFormMixin, forms.Form):
    file = forms.FileField(label=_("Holiday file (YAML or JSON)"),
                           help_text=_("Dates already in the calendar are replaced; a file with any error "
                                       "changes nothing."))

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_IMPORT_BYTES:
            raise forms.ValidationError(_("The file is larger than %(n)d KB.") % {"n": MAX_IMPORT_BYTES // 1024})
        return upload
