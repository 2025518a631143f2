"""The ticket's workflow panel (the diagram with the current nodes, the tasks, and for each open
task this user holds: the node's fields and the allowed actions) and the task actions it posts."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from scrm.forms import staff_users
from scrm.views import ObjectView, StaffView
from tickets import fields as schema

from .. import selectors
from ..dispatch_selectors import dispatch_tools
from ..engine import _Graph, staff_user, task_act, task_policy_for
from ..forms import ACTION_LABELS, TaskActForm
from ..graph import node_label
from ..models import TaskStatus
from ..policy import node_fields
from ..routing import reasons_display
from ..sla_ticket import sla_status
from . import TASK_ACT_PERMISSION, TASK_VIEW_PERMISSION, diagram, errors_of, is_htmx

TASK_STATUS_LABELS = {"open": pgettext_lazy("task status", "Open"), "done": pgettext_lazy("task status", "Done"),
                      "cancelled": pgettext_lazy("task status", "Cancelled")}


def node_form_for(ticket, editable, required, *, task_pk, data=None, files=None):
    """The node's editable fields as a ticket data form (staff audience), or None when there are none."""
    version_fields = ticket.template_version.fields
    writable = [dict(f, staff="edit") for f in version_fields if f["key"] in editable]
    if not writable:
        return None
    form_class = schema.form_class_for(writable, audience="staff", data_initial=ticket.data)
    form = form_class(data, files, partial=True, auto_id=f"t{task_pk}-%s")
    for key in required:
        if key in form.fields:
            form.fields[key].required = True  # shows the asterisk; the engine checks it on submit
    return form


class TicketPanelView(StaffView, ObjectView):
    """`workflow/ticket/<pk>/panel/` (htmx): the diagram with the ticket's current node(s), its
    tasks, and for each open task this user holds: the node's fields and the allowed actions."""

    permission = TASK_VIEW_PERMISSION

    def load(self, pk):
        return selectors.ticket_for_panel(user=self.request.user, pk=pk)

    def get(self, request, pk):
        return render_panel(request, self.object)


def render_panel(request, ticket, *, status=200, bound=None, errors=None, act_values=None):
    """The panel; `bound` = {task pk: bound node form} and `errors` = messages after a failed act."""
    template = "workflow/_panel.html" if is_htmx(request) else "workflow/panel_page.html"
    state = selectors.ticket_run_state(ticket=ticket)
    sla = sla_status(selectors.ticket_sla(ticket=ticket), timezone.now())
    if state is None:
        return render(request, template, {"ticket": ticket, "run": None, "sla": sla}, status=status)
    run, graph_data, active, done = state
    graph = _Graph(graph_data)
    tasks = selectors.ticket_tasks(ticket=ticket)
    by_key = {f["key"]: f for f in ticket.template_version.fields}
    mine, staff = [], None
    user = request.user
    can_act = user.has_perm(TASK_ACT_PERMISSION)
    for task in tasks:
        task.holders = [u for u in [task.assignee, task.backup, *task.co_handlers.all()] if u is not None]
        task.co_list = list(task.co_handlers.all())
        task.status_label = TASK_STATUS_LABELS.get(task.status, task.status)
        task.overdue = task.status == TaskStatus.OPEN and task.due_at is not None and task.due_at < timezone.now()
        task.action_label = ACTION_LABELS.get(task.action, task.action)
        task.reasons = reasons_display(task.handler_reasons)
        if not can_act or task.status != TaskStatus.OPEN or task.node not in graph.nodes:
            continue
        task.run = run  # the engine reads the version through it
        # The engine's own rules (workflow.policy): the buttons and fields are what task_act allows.
        policy = task_policy_for(task, user, graph, holders={u.pk for u in task.holders})
        actions = policy.actions
        if not actions:
            continue
        visible, editable, required = policy.visible, policy.editable, policy.required
        shown = [{"label": schema.field_label(by_key[k]), "value": schema.display_value(by_key[k], ticket.data.get(k))}
                 for k in by_key if k in visible and k not in editable]
        form = (bound or {}).get(task.pk) or node_form_for(ticket, editable, required, task_pk=task.pk)
        if staff is None and ({"transfer", "cohandle"} & set(actions)):
            staff = list(staff_users())
        holders = {u.pk for u in task.holders}
        mine.append({
            "task": task, "node": graph.nodes[task.node], "actions": [(a, ACTION_LABELS[a]) for a in actions],
            "shown": shown, "form": form, "required": [schema.field_label(by_key[k]) for k in by_key if k in required],
            "targets": [(k, node_label(graph.nodes[k])) for k in policy.return_targets]
            if {"return", "reject"} & set(actions) else [],
            # 驳回 follows the node's reject way unless a node is chosen: offer "by the workflow" first.
            "reject_way": "reject" in actions and any(t.get("on") == "reject" for t in graph.out[task.node]),
            "staff": [u for u in staff or [] if u.pk not in holders],
            "reason_for": [label for a, label in ((a, ACTION_LABELS[a]) for a in actions) if policy.needs_reason(a)],
            "errors": errors if bound and task.pk in bound else None,
            "values": act_values if bound and task.pk in bound else {},
        })
    context = {
        "dispatch": dispatch_tools(user=user, ticket=ticket, tasks=tasks, can_act=can_act),
        "ticket": ticket, "run": run, "sla": sla, "workflow": run.version.workflow, "version": run.version,
        "diagram": diagram(graph_data, active=active, done=done,
                           field_labels={f"data.{k}": schema.field_label(f) for k, f in by_key.items()}),
        "tasks": tasks, "mine": mine,
        "active": [node_label(graph.nodes[k]) for k in graph.nodes if k in active],
        "errors": errors if errors and not any(m["errors"] for m in mine) else None,
    }
    return render(request, template, context, status=status)


class TaskActView(StaffView, ObjectView):
    """POST `workflow/task/<pk>/act/`: the node's fields + `_action` (+ `_comment`, `_target`,
    `_transfer_to`, `_co_handler`) → task_act. Any error: the panel again with it, 400, nothing
    changed. Fields the node does not make editable are refused, not ignored."""

    permission = TASK_ACT_PERMISSION
    http_method_names = ["post"]

    def load(self, pk):
        return selectors.task_for_user(user=self.request.user, pk=pk)

    def post(self, request, pk):
        task = self.object
        ticket = selectors.ticket_for_panel(user=request.user, pk=task.ticket_id)
        graph = _Graph(task.run.version.graph)
        # The form shows what the node allows; whether this person may act is the engine's policy.
        _visible, editable, required = node_fields(graph.nodes[task.node])
        policy = task_policy_for(task, request.user, graph, with_targets=False)
        act = TaskActForm(request.POST)
        form = node_form_for(ticket, editable, required, task_pk=task.pk, data=request.POST, files=request.FILES)
        errors = []
        if "finished" in policy.reasons:
            errors.append(_("This task is already finished."))
        elif "not_holder" in policy.reasons:
            errors.append(_("You do not hold this task."))
        field_keys = {f["key"] for f in ticket.template_version.fields}
        refused = sorted(((set(request.POST) | set(request.FILES)) & field_keys) - editable)
        if refused and not errors:
            errors.append(_("These fields cannot be edited at this node: %(keys)s.") % {"keys": ", ".join(refused)})
        if not errors:
            if not act.is_valid():
                errors += [m for field_errors in act.errors.values() for m in field_errors]
            if form is not None and not form.is_valid():
                errors.append(_("Check the fields marked below."))
        if not errors:
            data = act.cleaned_data
            try:
                task_act(task=task, action=data["_action"], user=request.user,
                         data=form.raw_data if form is not None else {},
                         files=(form.raw_files or None) if form is not None else None,
                         comment=data["_comment"].strip(), target=data["_target"] or None,
                         transfer_to=self.staff(data["_transfer_to"], "transfer_to"),
                         co_handler=self.staff(data["_co_handler"], "co_handler"), parts=data["parts"])
            except ValidationError as exc:
                if hasattr(exc, "error_dict"):
                    for key, messages_ in exc.message_dict.items():
                        if form is not None and key in form.fields:
                            form.add_error(key, messages_)
                            errors.append(_("Check the fields marked below."))
                        else:
                            errors += messages_
                else:
                    errors += errors_of(exc)
        if errors:
            values = {k: request.POST.get(f"_{k}", "") for k in ("comment", "target", "transfer_to", "co_handler",
                                                                    "parts")}
            return render_panel(request, ticket, status=400, bound={task.pk: form}, errors=list(dict.fromkeys(errors)),
                                act_values=values)
        messages.success(request, _("“%(node)s”: %(action)s — done.") % {
            "node": task.node_name, "action": ACTION_LABELS[policy.canonical(act.cleaned_data["_action"])]})
        still_visible = selectors.ticket_for_panel(user=request.user, pk=ticket.pk) is not None
        target = reverse("ticket-detail", args=[ticket.pk]) if still_visible else reverse("work-queue")
        if is_htmx(request):
            response = HttpResponse(status=204)
            response["HX-Redirect"] = target
            return response
        return redirect(target)

    @staticmethod
    def staff(pk, field):
        """A member of staff of this tenant by id (None when not given); unknown ids are refused
        by the engine as "not a member of staff"."""
        if not pk:
            return None
        user = staff_user(pk)
        if user is None:
            raise ValidationError({field: _("Select a member of staff of this company.")})
        return user
