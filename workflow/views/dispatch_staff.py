"""Staff duty pages: the one-tap on/off duty an engineer finds on 我的待办 (POST /workflow/duty/),
the manager's staff board per store (/workflow/roster/: on duty, open tasks, skills) and the
form where a manager edits a person's skills and ticket limit (/workflow/roster/<pk>/). Thin:
workflow.dispatch_staff reads, scrm.services.staff_update writes."""

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_scopes.forms import SafeModelChoiceField, SafeModelMultipleChoiceField

from scrm.models import Skill, Store
from scrm.services import staff_update
from scrm.views import ObjectView, StaffView

from ..dispatch_staff import (
    board_profile_get,
    board_profiles,
    board_stores,
    own_profile,
    staff_board_allowed,
    staff_edit_allowed,
)
from . import TASK_VIEW_PERMISSION, errors_of

BOARD_PERMISSION = "tickets.add_ticket"  # the roles that handle the exception pool
MAX_OPEN_LIMIT = 500  # as the staff page's form (scrm.forms.StaffForm)


class DutyForm(forms.Form):
    on_duty = forms.TypedChoiceField(choices=[("1", "on"), ("0", "off")], coerce=lambda v: v == "1",
                                     error_messages={"required": gettext_lazy("Say on or off duty."),
                                                     "invalid_choice": gettext_lazy("Say on or off duty.")})


class BoardFilterForm(forms.Form):
    store = SafeModelChoiceField(queryset=Store.objects.none(), required=False, label=gettext_lazy("Store"),
                                 empty_label=gettext_lazy("All my stores"),
                                 error_messages={"invalid_choice": gettext_lazy("Choose one of your stores.")})

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = board_stores(user=user)
        self.fields["store"].widget.attrs["class"] = "form-select form-select-sm"


class DispatchProfileForm(forms.Form):
    skills = SafeModelMultipleChoiceField(
        queryset=Skill.objects.none(), required=False, label=gettext_lazy("Skills"),
        widget=forms.CheckboxSelectMultiple(attrs={"class": "form-check-input"}),
        error_messages={"invalid_choice": gettext_lazy("“%(value)s” is not a skill of this company."),
                        "invalid_pk_value": gettext_lazy("“%(pk)s” is not a skill.")})
    max_open_tickets = forms.IntegerField(
        label=gettext_lazy("Ticket limit (open tasks at a time)"), min_value=1, max_value=MAX_OPEN_LIMIT,
        error_messages={"required": gettext_lazy("Give the ticket limit."),
                        "invalid": gettext_lazy("Enter a whole number."),
                        "min_value": gettext_lazy("At least one open ticket at a time."),
                        "max_value": gettext_lazy("At most %(limit_value)s open tickets.")})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["skills"].queryset = Skill.objects.order_by("name")
        self.fields["max_open_tickets"].widget.attrs["class"] = "form-control"


class DutyView(StaffView):
    """POST: the signed-in person goes on or off duty; back to where they tapped."""

    permission = TASK_VIEW_PERMISSION
    http_method_names = ["post"]

    def post(self, request):
        form = DutyForm(request.POST)
        profile = own_profile(user=request.user)
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
            back = ""
        if profile is None:
            messages.error(request, _("You have no staff profile in this company: ask an administrator."))
        elif not form.is_valid():
            messages.error(request, _("Say on or off duty."))
        else:
            on = form.cleaned_data["on_duty"]
            try:
                staff_update(profile=profile, actor=request.user, on_duty=on)
            except ValidationError as exc:
                for message in errors_of(exc):
                    messages.error(request, message)
            else:
                messages.success(request, _("You are on duty: new tickets can come to you.") if on
                                 else _("You are off duty: no new tickets will be dispatched to you."))
        return redirect(back or "work-queue")


class _BoardMixin:
    permission = BOARD_PERMISSION

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and getattr(request, "tenant", None) is not None \
                and not staff_board_allowed(user=request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class StaffBoardView(_BoardMixin, StaffView):
    """Who is on duty per store, their open tasks against their limit, and their skills."""

    def get(self, request):
        form = BoardFilterForm(request.GET or None, user=request.user)
        store = form.cleaned_data.get("store") if form.is_bound and form.is_valid() else None
        if form.is_bound and not form.is_valid():
            return render(request, "workflow/staff_board.html", {"form": form, "page": None}, status=400)
        page = self.paginate(board_profiles(user=request.user, store_id=store.pk if store else None))
        return render(request, "workflow/staff_board.html", {
            "form": form, "page": page, "can_edit": staff_edit_allowed(user=request.user),
            "query": f"store={store.pk}" if store else ""})


class StaffDispatchEditView(_BoardMixin, StaffView, ObjectView):
    """A person's skills and ticket limit, as a manager of their store sees them."""

    def load(self, pk):
        return board_profile_get(user=self.request.user, pk=pk)

    def get(self, request, pk):
        form = DispatchProfileForm(initial={"skills": list(self.object.skills.all()),
                                            "max_open_tickets": self.object.max_open_tickets})
        return render(request, "workflow/staff_edit.html", {"form": form, "profile": self.object})

    def post(self, request, pk):
        form = DispatchProfileForm(request.POST)
        if form.is_valid():
            try:
                staff_update(profile=self.object, actor=request.user, skills=list(form.cleaned_data["skills"]),
                             max_open_tickets=form.cleaned_data["max_open_tickets"])
            except ValidationError as exc:
                form.add_error(None, errors_of(exc))
            else:
                messages.success(request, _("Saved %(name)s's skills and ticket limit.") % {
                    "name": self.object.display_name})
                return redirect("workflow-staff-board")
        return render(request, "workflow/staff_edit.html", {"form": form, "profile": self.object}, status=400)
