"""Smart dispatch pages: the exception pool (异常工单池) at /workflow/pool/, where dispatchers and
managers assign or re-dispatch a waiting ticket; the ticket page's dispatch actions (a manager
re-dispatches or picks the handler by hand, the handler flags the ticket into the pool), and the
simulation at /workflow/dispatch/simulate/, which runs a workflow's dispatch rule (draft or
published) over recent tickets or a generated day without writing. Thin: workflow.dispatch_selectors reads,
workflow.pool writes."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from scrm.forms import StaffChoiceField
from scrm.models import Store
from scrm.views import ObjectView, StaffView

from .. import selectors
from ..dispatch_selectors import (
    GENERATED_MAX_TICKETS,
    SIMULATION_MAX_DAYS,
    assignable_people,
    day_generate,
    dispatch_simulate,
    pool_allowed,
    pool_entries,
    pool_entry_get,
)
from ..models import Workflow
from ..pool import DETAIL_MAX, pool_assign, pool_redispatch, ticket_flag, ticket_handler_pick, ticket_redispatch
from ..routing import reasons_display
from . import DESIGN_PERMISSION, TASK_ACT_PERMISSION, errors_of

POOL_PERMISSION = "tickets.change_ticket"


class PoolAssignForm(forms.Form):
    assignee = StaffChoiceField(queryset=get_user_model().objects.none(), label=gettext_lazy("Handler"),
                                error_messages={"required": gettext_lazy("Choose the person."),
                                                "invalid_choice": gettext_lazy(
                                                    "Choose a member of staff of this company who works on "
                                                    "tickets.")})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignable_people()


def _reason_field():
    return forms.CharField(label=gettext_lazy("Reason"), max_length=DETAIL_MAX, widget=forms.Textarea(
        attrs={"rows": 2}), error_messages={"required": gettext_lazy("Say why."), "max_length": gettext_lazy(
            "At most %(limit_value)d characters (it has %(show_value)d).")})


class ReasonForm(forms.Form):
    reason = _reason_field()


class HandlerPickForm(PoolAssignForm):
    reason = _reason_field()


class SimulateForm(forms.Form):
    workflow = forms.ModelChoiceField(queryset=Workflow.objects.none(), label=gettext_lazy("Workflow"),
                                      error_messages={"required": gettext_lazy("Choose the workflow."),
                                                      "invalid_choice": gettext_lazy("Choose a workflow of this "
                                                                                     "company.")})
    version = forms.ChoiceField(label=gettext_lazy("Version"), initial="draft",
                                choices=[("draft", gettext_lazy("Draft (not yet published)")),
                                         ("published", gettext_lazy("Published"))])
    window = forms.ChoiceField(label=gettext_lazy("Tickets"), initial="recent", required=False,
                               choices=[("recent", gettext_lazy("Recent tickets again")),
                                        ("generated", gettext_lazy("A generated working day"))],
                               error_messages={"invalid_choice": gettext_lazy("Choose recent tickets or a "
                                                                              "generated day.")})
    days = forms.IntegerField(label=gettext_lazy("Tickets of the last … days"), min_value=1,
                              max_value=SIMULATION_MAX_DAYS, initial=7, required=False)
    count = forms.IntegerField(label=gettext_lazy("Generated tickets"), min_value=1,
                               max_value=GENERATED_MAX_TICKETS, initial=40, required=False,
                               help_text=gettext_lazy("Spread over 9:00–18:00 today."))
    seed = forms.IntegerField(label=gettext_lazy("Seed"), min_value=0, max_value=2**31 - 1, initial=1,
                              required=False, help_text=gettext_lazy("The same seed generates the same day."))
    stores = forms.ModelMultipleChoiceField(queryset=Store.objects.none(), required=False,
                                            label=gettext_lazy("Only these stores"),
                                            error_messages={"invalid_choice": gettext_lazy(
                                                "Choose stores of this company."),
                                                "invalid_pk_value": gettext_lazy("Choose stores of this company.")})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workflow"].queryset = Workflow.objects.select_related("current_version", "template").order_by(
            "name")
        self.fields["stores"].queryset = Store.objects.order_by("name")
        self.fields["stores"].widget.attrs["size"] = 4
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select" if isinstance(field.widget, forms.Select) else "form-control"

    def clean(self):
        data = super().clean()
        if "window" not in self.errors:
            data["window"] = data.get("window") or "recent"
        if data.get("window") == "generated":
            if data.get("count") is None and "count" not in self.errors:
                self.add_error("count", _("Say how many tickets to generate (1–%(max)d).") % {
                    "max": GENERATED_MAX_TICKETS})
        elif data.get("window") == "recent" and data.get("days") is None and "days" not in self.errors:
            self.add_error("days", _("Say how many days back (1–%(max)d).") % {"max": SIMULATION_MAX_DAYS})
        return data


class PoolMixin:
    permission = POOL_PERMISSION

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and getattr(request, "tenant", None) is not None \
                and not pool_allowed(user=request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class PoolView(PoolMixin, StaffView):
    """The open entries of the exception pool the user may handle, oldest first."""

    def get(self, request):
        page = self.paginate(pool_entries(user=request.user))
        for entry in page:
            # The rule's "nobody" reason, rendered in the reader's language; else the stored detail.
            rows = reasons_display(entry.task.handler_reasons) if entry.task is not None else []
            entry.why = next((r["why"] for r in rows if r["name"] == "—" and r["why"]), entry.detail)
        return render(request, "workflow/pool.html", {"page": page, "assign_form": PoolAssignForm()})


class _PoolEntryView(PoolMixin, StaffView, ObjectView):
    def load(self, pk):
        return pool_entry_get(user=self.request.user, pk=pk)

    def fail(self, messages_):
        for message in messages_:
            messages.error(self.request, message)
        return redirect("workflow-pool")


class PoolAssignView(_PoolEntryView):
    def post(self, request, pk):
        form = PoolAssignForm(request.POST)
        if not form.is_valid():
            return self.fail([e for errors in form.errors.values() for e in errors])
        try:
            pool_assign(entry=self.object, assignee=form.cleaned_data["assignee"], actor=request.user)
        except ValidationError as exc:
            return self.fail(errors_of(exc))
        messages.success(request, _("%(number)s assigned to %(name)s.") % {
            "number": self.object.ticket.number,
            "name": form.cleaned_data["assignee"].first_name or form.cleaned_data["assignee"].username})
        return redirect("workflow-pool")


class PoolRedispatchView(_PoolEntryView):
    def post(self, request, pk):
        try:
            pool_redispatch(entry=self.object, actor=request.user)
        except ValidationError as exc:
            return self.fail(errors_of(exc))
        messages.success(request, _("%(number)s dispatched again.") % {"number": self.object.ticket.number})
        return redirect("workflow-pool")


class SimulateView(StaffView):
    """Pick a workflow (draft or published) and a window; see who would get each ticket."""

    permission = DESIGN_PERMISSION

    def get(self, request):
        form = SimulateForm(request.GET or None)
        sim = None
        if form.is_bound and form.is_valid():
            workflow = form.cleaned_data["workflow"]
            if form.cleaned_data["version"] == "draft":
                graph = workflow.draft
            else:
                graph = workflow.current_version.graph if workflow.current_version_id else {}
            generated = None
            if form.cleaned_data["window"] == "generated":
                generated = day_generate(workflow=workflow, count=form.cleaned_data["count"],
                                         seed=form.cleaned_data["seed"] or 0,
                                         stores=list(form.cleaned_data["stores"]))
            sim = dispatch_simulate(workflow=workflow, graph=graph, days=form.cleaned_data["days"] or 7,
                                    generated=generated)
        status = 400 if form.is_bound and not form.is_valid() else 200
        return render(request, "workflow/simulate.html", {"form": form, "sim": sim}, status=status)


# --- the ticket page's dispatch actions ---------------------------------------------------------

class _TicketDispatchView(StaffView, ObjectView):
    """POST only. The ticket must be one the user sees (else 404); an error shows the ticket's
    workflow panel again with it (400), nothing written; success goes back to the ticket."""

    http_method_names = ["post"]
    permission = TASK_ACT_PERMISSION
    manager_only = True

    def load(self, pk):
        return selectors.ticket_for_panel(user=self.request.user, pk=pk)

    def dispatch(self, request, *args, **kwargs):
        if self.manager_only and request.user.is_authenticated and getattr(request, "tenant", None) is not None \
                and not pool_allowed(user=request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def fail(self, errors):
        from .panel import render_panel

        return render_panel(self.request, self.object, status=400, errors=errors)

    def done(self, message):
        messages.success(self.request, message)
        return redirect(reverse("ticket-detail", args=[self.object.pk]))

    @staticmethod
    def form_errors(form):
        return [e for errors in form.errors.values() for e in errors]


class TicketRedispatchView(_TicketDispatchView):
    """A manager runs the node's dispatch rule again."""

    def post(self, request, pk):
        form = ReasonForm(request.POST)
        if not form.is_valid():
            return self.fail(self.form_errors(form))
        try:
            task = ticket_redispatch(ticket=self.object, actor=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            return self.fail(errors_of(exc))
        return self.done(_("Dispatched again to %(name)s.") % {
            "name": task.assignee.first_name or task.assignee.username})


class TicketHandlerPickView(_TicketDispatchView):
    """A manager picks the handler by hand, with a reason. The people to pick from come with a
    GET when the manager opens the form (htmx), not with every view of the ticket's panel."""

    http_method_names = ["get", "post"]

    def get(self, request, pk):
        return render(request, "workflow/_dispatch_people.html", {"people": assignable_people()})

    def post(self, request, pk):
        form = HandlerPickForm(request.POST)
        if not form.is_valid():
            return self.fail(self.form_errors(form))
        person = form.cleaned_data["assignee"]
        try:
            ticket_handler_pick(ticket=self.object, assignee=person, actor=request.user,
                                reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            return self.fail(errors_of(exc))
        return self.done(_("%(number)s assigned to %(name)s.") % {"number": self.object.number,
                                                                  "name": person.first_name or person.username})


class TicketFlagView(_TicketDispatchView):
    """The ticket's handler flags it into the exception pool, with a reason."""

    manager_only = False

    def post(self, request, pk):
        form = ReasonForm(request.POST)
        if not form.is_valid():
            return self.fail(self.form_errors(form))
        try:
            ticket_flag(ticket=self.object, actor=request.user, reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            return self.fail(errors_of(exc))
        return self.done(_("%(number)s is in the exception pool.") % {"number": self.object.number})
