"""Automation pages: triggers (list, new, edit), firings (with a retry), schedules (list with the
runs planned, new, edit) and revisits (the planned list, recording an outcome). Thin: selectors
read, automation.services write and validate."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from scrm.views import ObjectView, StaffView

from . import selectors
from .forms import LeadRuleForm, RevisitForm, ScheduleForm, TriggerForm
from .models import FiringStatus, RevisitStatus
from .services import (
    firing_retry,
    lead_rules_save,
    revisit_record,
    schedule_create,
    schedule_preview,
    schedule_upcoming,
    schedule_update,
    trigger_create,
    trigger_update,
)

TRIGGER_PERMISSION = "automation.change_trigger"
FIRING_PERMISSION = "automation.view_firing"
SCHEDULE_PERMISSION = "automation.change_schedule"
REVISIT_PERMISSION = "automation.change_revisit"
CALENDAR_DAYS = 42


class TriggerListView(StaffView):
    permission = TRIGGER_PERMISSION

    def get(self, request):
        return render(request, "automation/trigger_list.html", {"triggers": selectors.trigger_list()})


class TriggerCreateView(StaffView):
    permission = TRIGGER_PERMISSION

    def get(self, request):
        return render(request, "automation/trigger_edit.html", {"form": TriggerForm()})

    def post(self, request):
        form = TriggerForm(request.POST)
        if form.is_valid():
            try:
                trigger_create(tenant=request.tenant, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Trigger saved."))
                return redirect("automation-trigger-list")
        return render(request, "automation/trigger_edit.html", {"form": form}, status=400)


class TriggerUpdateView(StaffView, ObjectView):
    permission = TRIGGER_PERMISSION

    def load(self, pk):
        return selectors.trigger_get(pk=pk)

    def get(self, request, pk):
        return render(request, "automation/trigger_edit.html",
                      {"form": TriggerForm(trigger=self.object), "trigger": self.object})

    def post(self, request, pk):
        form = TriggerForm(request.POST)
        if form.is_valid():
            try:
                trigger_update(trigger=self.object, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Trigger saved."))
                return redirect("automation-trigger-list")
        return render(request, "automation/trigger_edit.html", {"form": form, "trigger": self.object}, status=400)


class FiringListView(StaffView):
    permission = FIRING_PERMISSION

    def get(self, request):
        status = request.GET.get("status", "")
        if status not in FiringStatus.values:
            status = ""
        page = self.paginate(selectors.firing_list(status=status))
        return render(request, "automation/firing_list.html", {
            "page": page, "status": status, "statuses": FiringStatus.choices, "querystring": self.querystring()})


class FiringRetryView(StaffView, ObjectView):
    permission = "automation.change_firing"
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.firing_get(pk=pk)

    def post(self, request, pk):
        try:
            firing_retry(firing=self.object)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Retry queued."))
        return redirect("automation-firing-list")


class ScheduleListView(StaffView):
    permission = SCHEDULE_PERMISSION

    def get(self, request):
        schedules = list(selectors.schedule_list())
        today = timezone.localdate()
        until = timezone.make_aware(datetime.datetime.combine(today + datetime.timedelta(days=CALENDAR_DAYS),
                                                              datetime.time.max))
        days: dict = {}
        for schedule in schedules:
            for moment in schedule_upcoming(schedule, until=until, limit=CALENDAR_DAYS):
                days.setdefault(timezone.localdate(moment), []).append((moment, schedule))
        calendar = [(day, sorted(items, key=lambda x: x[0])) for day, items in sorted(days.items())]
        return render(request, "automation/schedule_list.html", {"schedules": schedules, "calendar": calendar,
                                                                 "calendar_days": CALENDAR_DAYS})


class ScheduleCreateView(StaffView):
    permission = SCHEDULE_PERMISSION

    def get(self, request):
        form = ScheduleForm(initial={"starts_on": timezone.localdate(), "at_time": datetime.time(9, 0), "every": 1,
                                     "is_active": True})
        return render(request, "automation/schedule_edit.html", {"form": form})

    def post(self, request):
        form = ScheduleForm(request.POST)
        if form.is_valid():
            if "preview" in request.POST:
                moments, problem = schedule_preview(fields=form.cleaned_data)
                return render(request, "automation/schedule_edit.html", {
                    "form": form, "preview": moments, "preview_problem": problem, "previewed": True})
            try:
                schedule_create(tenant=request.tenant, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Schedule saved."))
                return redirect("automation-schedule-list")
        return render(request, "automation/schedule_edit.html", {"form": form}, status=400)


class ScheduleUpdateView(StaffView, ObjectView):
    permission = SCHEDULE_PERMISSION

    def load(self, pk):
        return selectors.schedule_get(pk=pk)

    def render_page(self, form, status=200, **extra):
        return render(self.request, "automation/schedule_edit.html", {
            "form": form, "schedule": self.object, "upcoming": schedule_upcoming(self.object, limit=6),
            "runs": selectors.schedule_runs(schedule=self.object), **extra}, status=status)

    def get(self, request, pk):
        return self.render_page(ScheduleForm(schedule=self.object))

    def post(self, request, pk):
        form = ScheduleForm(request.POST)
        if form.is_valid():
            if "preview" in request.POST:
                moments, problem = schedule_preview(fields=form.cleaned_data)
                return self.render_page(form, preview=moments, preview_problem=problem, previewed=True)
            try:
                schedule_update(schedule=self.object, **form.service_kwargs())
            except ValidationError as exc:
                form.add_service_errors(exc)
            else:
                messages.success(request, _("Schedule saved."))
                return redirect("automation-schedule-list")
        return self.render_page(form, status=400)


class RevisitListView(StaffView):
    permission = REVISIT_PERMISSION

    def get(self, request):
        done = request.GET.get("status") == RevisitStatus.DONE
        page = self.paginate(selectors.revisit_list(status=RevisitStatus.DONE if done else RevisitStatus.PLANNED))
        return render(request, "automation/revisit_list.html", {
            "page": page, "done": done, "today": timezone.localdate(), "form": RevisitForm(),
            "querystring": self.querystring()})


class RevisitRecordView(StaffView, ObjectView):
    permission = REVISIT_PERMISSION
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.revisit_get(pk=pk)

    def post(self, request, pk):
        form = RevisitForm(request.POST)
        if not form.is_valid():
            messages.error(request, " ".join(str(m) for errors in form.errors.values() for m in errors))
            return redirect("automation-revisit-list")
        try:
            revisit = revisit_record(revisit=self.object, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            if revisit.followup is not None:
                messages.warning(request, _("Revisit recorded; follow-up ticket %(number)s created.")
                                 % {"number": revisit.followup.number})
            else:
                messages.success(request, _("Revisit recorded."))
        return redirect("automation-revisit-list")


class LeadRulesView(StaffView):
    """The four tier rules A–D on one page, each with its follow-up plan; saving regrades."""

    permission = TRIGGER_PERMISSION  # tier rules are configuration, managed by whoever manages triggers

    def forms(self, data=None):
        rules = selectors.lead_rules_by_grade()
        forms = []
        for grade, rule in rules.items():
            initial = {"is_active": False}
            if rule is not None:
                initial = {f: getattr(rule, f) for f in LeadRuleForm.base_fields}
            forms.append((grade, LeadRuleForm(data, prefix=grade, initial=initial)))
        return forms

    def render_page(self, forms, status=200):
        counts = selectors.lead_grade_counts()
        return render(self.request, "automation/lead_rules.html", {
            "rows": [(grade, form, counts.get(grade, 0)) for grade, form in forms]}, status=status)

    def get(self, request):
        return self.render_page(self.forms())

    def post(self, request):
        forms = self.forms(request.POST)
        if all(form.is_valid() for _grade, form in forms):
            try:
                changed = lead_rules_save(tenant=request.tenant,
                                          rules={grade: form.cleaned_data for grade, form in forms})
            except ValidationError as exc:
                by_grade = dict(forms)
                for key, errors in exc.message_dict.items():
                    grade, _sep, field = key.partition("-")
                    form = by_grade.get(grade)
                    if form is not None:
                        form.add_error(field if field in form.fields else None, errors)
                    else:
                        messages.error(request, " ".join(errors))
            else:
                messages.success(request, _("Lead tier rules saved; %(n)d customers changed tier.") % {"n": changed})
                return redirect("automation-lead-rules")
        return self.render_page(forms, status=400)
