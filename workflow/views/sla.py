"""The SLA policy pages under /config/sla/: the list (with export and import), a new policy,
one policy's form with its escalation chain, and its deletion. Thin: the selectors read,
workflow.sla_policy writes and validates."""

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from scrm.views import ObjectView, StaffView

from .. import selectors
from ..forms_sla import LevelFormSet, SlaImportForm, SlaPolicyForm, level_initial
from ..services import calendar_file_load
from ..sla_policy import sla_policy_create, sla_policy_delete, sla_policy_export, sla_policy_import, sla_policy_update
from . import errors_of

SLA_PERMISSION = "workflow.change_slapolicy"


def _page(request, *, policy=None, form=None, levels=None, status=200):
    return render(request, "workflow/sla_edit.html", {
        "policy": policy, "form": form or SlaPolicyForm(policy=policy),
        "levels": levels or LevelFormSet(prefix="level", initial=level_initial(policy.escalations if policy else []))},
        status=status)


def _save(request, *, policy=None):
    form = SlaPolicyForm(request.POST, policy=policy)
    levels = LevelFormSet(request.POST, prefix="level")
    if form.is_valid() and levels.is_valid():
        chain = [f.level() for f in levels if f.has_changed() and f.cleaned_data]
        try:
            if policy is None:
                policy = sla_policy_create(tenant=request.tenant, escalations=chain, **form.service_kwargs())
            else:
                policy = sla_policy_update(policy=policy, escalations=chain, **form.service_kwargs())
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("SLA policy saved."))
            return redirect("workflow-sla", pk=policy.pk)
    return _page(request, policy=policy, form=form, levels=levels, status=400)


class SlaListView(StaffView):
    permission = SLA_PERMISSION

    def get(self, request):
        return render(request, "workflow/sla_list.html", {"policies": selectors.sla_policies(),
                                                          "import_form": SlaImportForm()})


class SlaCreateView(StaffView):
    permission = SLA_PERMISSION

    def get(self, request):
        return _page(request)

    def post(self, request):
        return _save(request)


class SlaView(StaffView, ObjectView):
    permission = SLA_PERMISSION

    def load(self, pk):
        return selectors.sla_policy_get(pk=pk)

    def get(self, request, pk):
        return _page(request, policy=self.object)

    def post(self, request, pk):
        return _save(request, policy=self.object)


class SlaDeleteView(StaffView, ObjectView):
    permission = SLA_PERMISSION
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.sla_policy_get(pk=pk)

    def post(self, request, pk):
        sla_policy_delete(policy=self.object)
        messages.success(request, _("SLA policy deleted; tickets under it keep their deadlines."))
        return redirect("workflow-sla-list")


class SlaExportView(StaffView):
    permission = SLA_PERMISSION

    def get(self, request):
        body = json.dumps(sla_policy_export(), ensure_ascii=False, indent=2)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="sla-policies.json"'
        return response


class SlaImportView(StaffView):
    permission = SLA_PERMISSION
    http_method_names = ["post"]

    def post(self, request):
        form = SlaImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                saved = sla_policy_import(tenant=request.tenant,
                                          payload=calendar_file_load(form.cleaned_data["file"].read()))
            except ValidationError as exc:
                form.add_error(None, errors_of(exc))
            else:
                messages.success(request, _("%(n)d SLA policies imported.") % {"n": len(saved)})
                return redirect("workflow-sla-list")
        return render(request, "workflow/sla_list.html", {"policies": selectors.sla_policies(), "import_form": form},
                      status=400)
