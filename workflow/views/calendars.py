"""The business calendar pages under /config/calendars/: the list, a new calendar, and one
calendar's form with its holidays and make-up days and the holiday file import. Thin: the
selectors read, workflow.services writes and validates."""

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from scrm.views import ObjectView, StaffView

from .. import selectors
from ..forms_calendar import CalendarForm, CalendarImportForm
from ..services import (
    calendar_create,
    calendar_day_delete,
    calendar_days_import,
    calendar_file_load,
    calendar_update,
)
from . import errors_of

CALENDAR_PERMISSION = "workflow.change_businesscalendar"


class CalendarListView(StaffView):
    permission = CALENDAR_PERMISSION

    def get(self, request):
        return render(request, "workflow/calendar_list.html", {"calendars": selectors.business_calendars()})


class CalendarCreateView(StaffView):
    permission = CALENDAR_PERMISSION

    def get(self, request):
        return render(request, "workflow/calendar_edit.html", {"form": CalendarForm()})

    def post(self, request):
        form = CalendarForm(request.POST)
        if form.is_valid():
            try:
                calendar = calendar_create(tenant=request.tenant, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Calendar created. Import its holidays below."))
                return redirect("workflow-calendar", pk=calendar.pk)
        return render(request, "workflow/calendar_edit.html", {"form": form}, status=400)


class CalendarView(StaffView, ObjectView):
    """One calendar: its form, its days, and the holiday import."""

    permission = CALENDAR_PERMISSION

    def load(self, pk):
        return selectors.business_calendar_get(pk=pk)

    def render_page(self, *, form=None, import_form=None, status=200):
        return render(self.request, "workflow/calendar_edit.html", {
            "calendar": self.object, "form": form or CalendarForm(calendar=self.object),
            "import_form": import_form or CalendarImportForm(),
            "days": selectors.business_calendar_days(calendar=self.object)}, status=status)

    def get(self, request, pk):
        return self.render_page()

    def post(self, request, pk):
        form = CalendarForm(request.POST, calendar=self.object)
        if form.is_valid():
            try:
                calendar_update(calendar=self.object, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Calendar saved."))
                return redirect("workflow-calendar", pk=pk)
        return self.render_page(form=form, status=400)


class CalendarImportView(StaffView, ObjectView):
    permission = CALENDAR_PERMISSION
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.business_calendar_get(pk=pk)

    def post(self, request, pk):
        form = CalendarImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                payload = calendar_file_load(form.cleaned_data["file"].read())
                created, updated = calendar_days_import(calendar=self.object, payload=payload)
            except ValidationError as exc:
                form.add_error(None, errors_of(exc))
            else:
                messages.success(request, _("%(created)d days added, %(updated)d changed.")
                                 % {"created": created, "updated": updated})
                return redirect("workflow-calendar", pk=pk)
        return CalendarView(request=request, object=self.object).render_page(import_form=form, status=400)


class CalendarDayDeleteView(StaffView, ObjectView):
    """POST date=YYYY-MM-DD: that holiday or make-up day goes."""

    permission = CALENDAR_PERMISSION
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.business_calendar_get(pk=pk)

    def post(self, request, pk):
        try:
            day = datetime.date.fromisoformat(request.POST.get("date", ""))
            calendar_day_delete(calendar=self.object, day=day)
        except (ValueError, ValidationError):
            messages.error(request, _("The calendar has no entry on that date."))
        else:
            messages.success(request, _("%(date)s removed.") % {"date": day.isoformat()})
        return redirect("workflow-calendar", pk=pk)
