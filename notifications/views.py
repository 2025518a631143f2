"""Notification pages: the in-app bell (unread count, refreshed by htmx) and inbox; the managers'
template list, editor with live preview (htmx) and reset; each staff member's preferences.
Thin: selectors read, services write (one transaction each), forms validate."""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from scrm.views import StaffView

from . import selectors, services
from .defaults import sample_variables
from .forms import PreferenceForm, PreviewForm, TemplateForm
from .models import STAFF_CHANNELS, TEMPLATE_CHANNELS
from .offered import events_offered
from .rendering import template_render


class BellView(StaffView):
    def get(self, request):
        return render(request, "notifications/_bell.html", {"unread": selectors.unread_count(user=request.user)})


class InboxView(StaffView):
    def get(self, request):
        return render(request, "notifications/inbox.html", {
            "items": selectors.inbox(user=request.user, limit=50),
            "unread": selectors.unread_count(user=request.user),
        })

    def post(self, request):
        ids = [int(i) for i in request.POST.getlist("ids") if i.isdigit() and len(i) < 19] or None
        services.notifications_mark_read(user=request.user, ids=ids)
        return redirect("notification-inbox")


# --- templates --------------------------------------------------------------------------

def _choice(value, choices):
    return value if value in choices else ""


def _slot_params(request_data):
    """The event × channel × language a request names (blank where missing or not a choice)."""
    return {
        "event": _choice(request_data.get("event", ""), [e.value for e in events_offered()]),
        "channel": _choice(request_data.get("channel", ""), [c.value for c in TEMPLATE_CHANNELS]),
        "language": _choice(request_data.get("language", ""), [code for code, _name in settings.LANGUAGES]),
    }


def _edit_url(event, channel, language):
    return reverse("notification-template-edit") + "?" + urlencode(
        {"event": event, "channel": channel, "language": language})


class TemplateListView(StaffView):
    permission = "notifications.view_notificationtemplate"

    def get(self, request):
        filters = _slot_params(request.GET)
        # One section per event (its channels × languages inside), so the page reads as a list of
        # events rather than every slot in one long table.
        groups: dict[str, dict] = {}
        for slot in selectors.template_grid(**filters):
            group = groups.setdefault(slot.event, {"event": slot.event, "label": slot.event_label, "slots": [],
                                                   "custom": 0})
            group["slots"].append(slot)
            group["custom"] += not slot.is_default
        return render(request, "notifications/template_list.html", {
            "groups": list(groups.values()), "filters": filters,
            "events": [(e.value, e.label) for e in events_offered()],
            "channels": [(c.value, c.label) for c in TEMPLATE_CHANNELS], "languages": settings.LANGUAGES,
            "can_change": request.user.has_perm("notifications.change_notificationtemplate"),
        })


class TemplateEditView(StaffView):
    """GET ?event=…&channel=…&language=… shows the saved wording or the built-in default; POST
    saves it (create or replace) after the sandbox check."""

    permission = "notifications.change_notificationtemplate"

    def get(self, request):
        params = _slot_params(request.GET)
        slot = selectors.template_slot(
            event=params["event"] or events_offered()[0].value, channel=params["channel"] or TEMPLATE_CHANNELS[0].value,
            language=params["language"] or settings.LANGUAGE_CODE,
        )
        form = TemplateForm(initial={
            "event": slot.event, "channel": slot.channel, "language": slot.language, "subject": slot.subject,
            "body": slot.body, "sms_template_code": slot.sms_template_code,
        })
        return self.render_form(form, slot)

    def post(self, request):
        form = TemplateForm(request.POST)
        if form.is_valid():
            try:
                services.notification_template_save(tenant=request.tenant, **form.cleaned_data)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, _("Template saved."))
                data = form.cleaned_data
                return redirect(_edit_url(data["event"], data["channel"], data["language"]))
        params = _slot_params(request.POST)
        slot = selectors.template_slot(**params) if all(params.values()) else None
        return self.render_form(form, slot, status=400)

    def render_form(self, form, slot, status=200):
        return render(self.request, "notifications/template_edit.html", {"form": form, "slot": slot}, status=status)


class TemplatePreviewView(StaffView):
    """htmx: the form's current wording rendered with sample variables (errors shown in place)."""

    permission = "notifications.change_notificationtemplate"

    def post(self, request):
        form = PreviewForm(request.POST)
        context = {"form": form}
        if form.is_valid():
            variables = sample_variables(form.cleaned_data["language"])
            context.update(subject=template_render(form.cleaned_data["subject"], variables),
                           body=template_render(form.cleaned_data["body"], variables))
        # 200 either way: htmx swaps the errors into the preview like a result.
        return render(request, "notifications/_preview.html", context)


class TemplateResetView(StaffView):
    """POST id=…: delete a saved template, so the built-in wording applies again."""

    permission = "notifications.change_notificationtemplate"

    def post(self, request):
        raw = request.POST.get("id", "")
        template = selectors.template_get(pk=int(raw)) if raw.isdigit() and len(raw) < 19 else None
        if template is None:
            raise Http404
        services.notification_template_reset(tenant=request.tenant, template=template)
        messages.success(request, _("The built-in wording applies again."))
        return redirect(_edit_url(template.event, template.channel, template.language))


# --- preferences ------------------------------------------------------------------------

class PreferencesView(StaffView):
    """My notification preferences: per event the channels beside the bell, the minimum
    priority and quiet hours. Needs only a seat in the tenant."""

    def get_forms(self, data=None):
        forms = []
        for event, preference in selectors.preferences_of(user=self.request.user).items():
            if preference is None:
                initial = {"channels": [c.value for c in services.STAFF_DEFAULT_CHANNELS], "min_priority": "low"}
            else:
                initial = {"channels": preference.channels, "min_priority": preference.min_priority,
                           "quiet_start": preference.quiet_start, "quiet_end": preference.quiet_end}
            forms.append(PreferenceForm(data, event=event, initial=initial))
        return forms

    def get(self, request):
        return self.render_forms(self.get_forms())

    def post(self, request):
        forms = self.get_forms(request.POST)
        errors = []
        valid = [form.is_valid() for form in forms]  # every form validated, so each shows its errors
        if all(valid):
            try:
                services.preferences_save(tenant=request.tenant, user=request.user,
                                          rows={form.event: form.row() for form in forms})
            except ValidationError as exc:
                errors = exc.messages
            else:
                messages.success(request, _("Your notification preferences were saved."))
                return redirect("notification-preferences")
        return self.render_forms(forms, errors=errors, status=400)

    def render_forms(self, forms, errors=(), status=200):
        return render(self.request, "notifications/preferences.html", {
            "forms": forms, "errors": errors, "channels": STAFF_CHANNELS,
        }, status=status)
