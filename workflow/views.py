"""Workflow pages: the designer for managers (nodes, transitions, live diagram, validate,
publish, export/import), the work queues (我的待办 / 团队待办 / 退回给我), and the ticket panel
where a handler fills their node's fields and acts. Thin: workflow.selectors reads, the
services, designer and engine write, workflow.forms validates."""

import copy
import json
import re

import yaml
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from scrm.forms import staff_users
from scrm.views import ObjectView, StaffView
from tickets import fields as schema

from . import designer, selectors
from .engine import _Graph, node_field_rules, return_targets, staff_user, task_act, task_allowed_actions, task_holders
from .forms import (
    ACTION_LABELS,
    CONDITION_FIELD_LABELS,
    KIND_SHORT,
    OP_LABELS,
    ImportForm,
    NodeForm,
    TaskActForm,
    TransitionForm,
    WorkflowCreateForm,
    condition_row,
    rule_summary,
    template_fields,
)
from .graph import HUMAN_KINDS, graph_svg, graph_validate, node_label
from .models import TaskStatus
from .presets import workflow_preset_get
from .services import workflow_create, workflow_export, workflow_from_preset, workflow_import, workflow_publish

TASK_STATUS_LABELS = {"open": pgettext_lazy("task status", "Open"), "done": pgettext_lazy("task status", "Done"),
                      "cancelled": pgettext_lazy("task status", "Cancelled")}
DESIGN_PERMISSION = "workflow.change_workflow"
TASK_VIEW_PERMISSION = "workflow.view_task"
TASK_ACT_PERMISSION = "workflow.change_task"
EXPORT_FORMATS = {"json": "application/json; charset=utf-8", "yaml": "application/yaml; charset=utf-8"}
_VIEWBOX = re.compile(r'viewBox="0 0 ([\d.]+) ([\d.]+)"')


def is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def diagram(graph, *, active=(), done=()):
    """graph_svg's drawing with its natural size (the page lets it scroll on a phone)."""
    svg = graph_svg(graph or {"nodes": [], "transitions": []}, active=set(active), done=set(done))
    match = _VIEWBOX.search(svg)
    width, height = (float(match.group(1)), float(match.group(2))) if match else (0, 0)
    # graph_svg escapes every key and name it draws; the rest is numbers and fixed markup.
    return {"svg": mark_safe(svg), "width": round(width), "height": round(height)}  # noqa: S308


def errors_of(exc):
    """A ValidationError as a flat list of messages (a dict's keys do not matter to the reader)."""
    return [str(m) for m in exc.messages]


# --- the list of workflows ------------------------------------------------------------------

class WorkflowListView(StaffView):
    """`/config/workflows/`: each ticket template with its workflow and published version; create
    one from the template's preset (same slug) or blank."""

    permission = DESIGN_PERMISSION

    def get(self, request):
        return self.render_page()

    def render_page(self, error=None, status=200):
        rows = []
        for template in selectors.workflow_template_rows():
            workflow = getattr(template, "workflow", None)
            rows.append({"template": template, "workflow": workflow,
                         "preset": workflow is None and workflow_preset_get(template.slug) is not None})
        return render(self.request, "workflow/list.html", {"rows": rows, "error": error}, status=status)


class WorkflowCreateView(StaffView):
    """POST template + source (preset / blank): a new draft, opened in the designer."""

    permission = DESIGN_PERMISSION
    http_method_names = ["post"]

    def post(self, request):
        form = WorkflowCreateForm(request.POST)
        if not form.is_valid():
            return WorkflowListView(request=request).render_page(
                error=" ".join(m for errors in form.errors.values() for m in errors), status=400)
        template, source = form.cleaned_data["template"], form.cleaned_data["source"]
        try:
            if source == "preset":
                workflow = workflow_from_preset(template=template, preset_slug=template.slug, publish=False,
                                                actor=request.user)
                message = _("Workflow created from the preset. Check its nodes, then publish it.")
            else:
                workflow = workflow_create(template=template, graph={
                    "nodes": [{"key": "start", "kind": "start", "name": "开始"},
                              {"key": "end", "kind": "end", "name": "结束"}],
                    "transitions": []})
                message = _("Blank workflow created. Add its nodes and transitions, then publish it.")
        except ValidationError as exc:
            return WorkflowListView(request=request).render_page(error=" ".join(errors_of(exc)), status=400)
        messages.success(request, message)
        return redirect("workflow-designer", pk=workflow.pk)


# --- the designer ---------------------------------------------------------------------------

def _normalised(graph):
    try:
        return graph_validate(copy.deepcopy(graph))
    except ValidationError:
        return None


def condition_text(condition, field_labels=None):
    row = condition_row(condition)
    if row is None:
        return _("custom condition") if condition else ""
    field, op, value = row
    label = CONDITION_FIELD_LABELS.get(field) or (field_labels or {}).get(field, field)
    return f"{label} {OP_LABELS.get(op, op)} {value}".strip()


class DesignerView(StaffView, ObjectView):
    """`/config/workflows/<pk>/`: the draft's nodes and transitions with their editors, the live
    diagram, and validate / publish / export / import."""

    permission = DESIGN_PERMISSION

    def load(self, pk):
        return selectors.workflow_get(pk=pk)

    @property
    def workflow(self):
        return self.object

    def get(self, request, pk):
        return self.render_page()

    # context

    def fields(self):
        return template_fields(self.workflow.template)

    def node_choices(self):
        return [{"key": n["key"], "kind": n.get("kind"), "label": node_label(n)}
                for n in self.workflow.draft.get("nodes", []) if isinstance(n, dict) and isinstance(n.get("key"), str)]

    def node_form(self, data=None, initial=None):
        return NodeForm(data, fields=self.fields(), initial=initial, auto_id="node-%s")

    def transition_form(self, data=None, initial=None, kept=None):
        return TransitionForm(data, nodes=self.node_choices(), fields=self.fields(), initial=initial,
                              kept_condition=kept, auto_id="tr-%s")

    def rows(self):
        graph = self.workflow.draft
        users = selectors.workflow_users(graph=graph)
        labels = {n["key"]: n["label"] for n in self.node_choices()}
        field_labels = {f"data.{f['key']}": schema.field_label(f) for f in self.fields()}
        nodes = []
        for node in graph.get("nodes", []):
            if not isinstance(node, dict):
                continue
            kind = node.get("kind")
            rules = node.get("handlers") if kind == "countersign" else [node.get("handler")]
            handlers = [rule_summary(r, users) for r in rules or [] if isinstance(r, dict)]
            spec = node.get("fields") if isinstance(node.get("fields"), dict) else {}
            nodes.append({
                "key": node.get("key"), "kind": kind, "kind_label": KIND_SHORT.get(kind, kind),
                "label": node_label(node), "human": kind in HUMAN_KINDS, "handlers": handlers,
                "backup": rule_summary(node.get("backup"), users), "time_limit": node.get("time_limit"),
                "mode": node.get("mode"), "n": node.get("n"),
                "editable": len(spec.get("editable") or []), "visible": len(spec.get("visible") or []),
                "action": node.get("action") if kind == "auto" else "",
            })
        transitions = []
        for i, t in enumerate(graph.get("transitions", [])):
            if not isinstance(t, dict):
                continue
            transitions.append({
                "index": i, "from": t.get("from"), "to": t.get("to"), "from_label": labels.get(t.get("from"), "?"),
                "to_label": labels.get(t.get("to"), "?"), "on": t.get("on", ""), "default": bool(t.get("default")),
                "condition": condition_text(t.get("condition"), field_labels),
            })
        return nodes, transitions

    def left_context(self, node_form=None, transition_form=None, message=None, error=None):
        nodes, transitions = self.rows()
        return {
            "workflow": self.workflow, "nodes": nodes, "transitions": transitions,
            "node_form": node_form or self.node_form(initial={"kind": "task"}),
            "transition_form": transition_form or self.transition_form(),
            "panel_message": message, "panel_error": error,
        }

    def status_context(self):
        current = self.workflow.current_version
        return {"current": current,
                "draft_changed": current is None or _normalised(self.workflow.draft) != current.graph}

    def render_page(self, status=200, import_form=None, publish_errors=None, **left):
        context = {
            **self.left_context(**left), **self.status_context(),
            "template": self.workflow.template, "diagram": diagram(self.workflow.draft),
            "import_form": import_form or ImportForm(), "publish_errors": publish_errors,
        }
        return render(self.request, "workflow/designer.html", context, status=status)

    def render_left(self, status=200, **left):
        """The lists and editors (htmx), with the diagram and the publish status swapped out of band."""
        context = {**self.left_context(**left), **self.status_context(), "oob": True,
                   "diagram": diagram(self.workflow.draft)}
        return render(self.request, "workflow/_designer_work.html", context, status=status)

    def done(self, message):
        if is_htmx(self.request):
            return self.render_left(message=message)
        messages.success(self.request, message)
        return redirect("workflow-designer", pk=self.workflow.pk)

    def failed(self, error=None, **forms):
        if is_htmx(self.request):
            return self.render_left(status=400, error=error, **forms)
        return self.render_page(status=400, error=error, **forms)

    def change(self, func):
        self.object = designer.draft_change(workflow=self.workflow, change=func)


def _form_errors(form, exc):
    if hasattr(exc, "error_dict"):
        for key, errors in exc.error_dict.items():
            form.add_error(key if key in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class NodeFormView(DesignerView):
    """GET `?key=`: the node editor filled with that node (empty: a new node). POST: save it."""

    def get(self, request, pk):
        key = request.GET.get("key", "")
        form = self.node_form(initial={"kind": request.GET.get("kind", "task")})
        if key:
            node = designer.node_get(self.workflow.draft, key)
            if node is None:
                raise Http404
            form = self.node_form(initial=NodeForm.initial_for(node))
        if is_htmx(request):
            return render(request, "workflow/_node_form.html", {"workflow": self.workflow, "node_form": form})
        return self.render_page(node_form=form)

    def post(self, request, pk):
        form = self.node_form(request.POST)
        if form.is_valid():
            node, original = form.node, form.cleaned_data["original_key"]
            if original:
                previous = designer.node_get(self.workflow.draft, original) or {}
                for kept in ("x", "y"):  # layout hints a future designer might store
                    if kept in previous:
                        node[kept] = previous[kept]
            try:
                self.change(lambda graph: designer.node_save(graph, node, original_key=original))
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                return self.done(_("Node “%(key)s” saved.") % {"key": node["key"]})
        return self.failed(node_form=form)


class NodeDeleteView(DesignerView):
    http_method_names = ["post"]

    def post(self, request, pk):
        key = request.POST.get("key", "")
        try:
            self.change(lambda graph: designer.node_delete(graph, key))
        except ValidationError as exc:
            return self.failed(error=" ".join(errors_of(exc)))
        return self.done(_("Node “%(key)s” and its transitions deleted.") % {"key": key})


def _index(value):
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 6 else None


class TransitionFormView(DesignerView):
    """GET `?index=`: the transition editor filled with that transition. POST: save it."""

    def existing(self, index, original=None):
        transitions = self.workflow.draft.get("transitions", [])
        if index is None or index >= len(transitions) or not isinstance(transitions[index], dict):
            return None
        t = transitions[index]
        if original is not None and (t.get("from"), t.get("to")) != original:
            return None
        return t

    def get(self, request, pk):
        form = self.transition_form(initial={"source": request.GET.get("from", "")})
        if "index" in request.GET:
            index = _index(request.GET["index"])
            transition = self.existing(index)
            if transition is None:
                raise Http404
            row = condition_row(transition.get("condition"))
            kept = transition.get("condition") if transition.get("condition") and row is None else None
            form = self.transition_form(initial=TransitionForm.initial_for(transition, index), kept=kept)
        if is_htmx(request):
            return render(request, "workflow/_transition_form.html",
                          {"workflow": self.workflow, "transition_form": form})
        return self.render_page(transition_form=form)

    def post(self, request, pk):
        index = _index(request.POST.get("index", ""))
        original = (request.POST.get("original_from", ""), request.POST.get("original_to", ""))
        kept = None
        if index is not None:
            existing = self.existing(index, original)
            if existing is None:
                return self.failed(error=_("That transition is no longer in the draft; reload the page."))
            if existing.get("condition") and condition_row(existing.get("condition")) is None:
                kept = existing["condition"]
        form = self.transition_form(request.POST, kept=kept)
        if form.is_valid():
            transition = form.transition
            try:
                self.change(lambda graph: designer.transition_save(
                    graph, transition, index=index, original={"from": original[0], "to": original[1]}))
            except ValidationError as exc:
                _form_errors(form, exc)
            else:
                return self.done(_("Transition %(a)s → %(b)s saved.") % {"a": transition["from"],
                                                                         "b": transition["to"]})
        return self.failed(transition_form=form)


class TransitionDeleteView(DesignerView):
    http_method_names = ["post"]

    def post(self, request, pk):
        index = _index(request.POST.get("index", ""))
        original = {"from": request.POST.get("from", ""), "to": request.POST.get("to", "")}
        try:
            self.change(lambda graph: designer.transition_delete(graph, index=index, original=original))
        except ValidationError as exc:
            return self.failed(error=" ".join(errors_of(exc)))
        return self.done(_("Transition %(a)s → %(b)s deleted.") % {"a": original["from"], "b": original["to"]})


def validation_messages(workflow):
    from .actions import ACTIONS
    from .services import _field_keys

    try:
        graph_validate(copy.deepcopy(workflow.draft), field_keys=_field_keys(workflow.template),
                       action_names=set(ACTIONS))
    except ValidationError as exc:
        return errors_of(exc)
    return []


class ValidateView(DesignerView):
    """POST: graph_validate's verdict on the draft, as a list (htmx) — writes nothing."""

    http_method_names = ["post"]

    def post(self, request, pk):
        problems = validation_messages(self.workflow)
        if is_htmx(request):
            return render(request, "workflow/_validation.html", {"problems": problems, "checked": True})
        return self.render_page(publish_errors=problems or None)


class PublishView(DesignerView):
    http_method_names = ["post"]

    def post(self, request, pk):
        try:
            version = workflow_publish(workflow=self.workflow, actor=request.user)
        except ValidationError as exc:
            return self.render_page(status=400, publish_errors=errors_of(exc))
        messages.success(request, _("Version %(n)d published: new tickets start on it; tickets in flight stay on "
                                    "their version.") % {"n": version.number})
        return redirect("workflow-designer", pk=pk)


class ExportView(DesignerView):
    """`?format=json|yaml`: the draft as a file to download (import it elsewhere)."""

    def get(self, request, pk):
        kind = request.GET.get("format", "json")
        if kind not in EXPORT_FORMATS:
            return HttpResponse(_("Unknown export format: use json or yaml."), status=400,
                                content_type="text/plain; charset=utf-8")
        payload = workflow_export(workflow=self.workflow)
        if kind == "json":
            body = json.dumps(payload, ensure_ascii=False, indent=1) + "\n"
        else:
            body = yaml.safe_dump(payload, allow_unicode=True, sort_keys=False)
        response = HttpResponse(body.encode("utf-8"), content_type=EXPORT_FORMATS[kind])
        response["Content-Disposition"] = f'attachment; filename="workflow-{self.workflow.template.slug}.{kind}"'
        return response


class ImportView(DesignerView):
    """POST a JSON/YAML export: its graph replaces the draft (optionally published at once).
    A bad file, or a graph that fails publishing, changes nothing."""

    http_method_names = ["post"]

    def post(self, request, pk):
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                designer.draft_check(form.payload.get("graph"))
                workflow_import(template=self.workflow.template, payload=form.payload,
                                publish=form.cleaned_data["publish"], actor=request.user)
            except ValidationError as exc:
                form.add_error(None, errors_of(exc))
            else:
                messages.success(request, _("Imported into the draft.") if not form.cleaned_data["publish"]
                                 else _("Imported and published."))
                return redirect("workflow-designer", pk=pk)
        return self.render_page(status=400, import_form=form)


class DiagramView(DesignerView):
    def get(self, request, pk):
        return render(request, "workflow/_diagram.html", {"diagram": diagram(self.workflow.draft)})


# --- work queues ----------------------------------------------------------------------------

QUEUE_TABS = ("mine", "team", "returned")


class WorkQueueView(StaffView):
    """`/work/`: 我的待办 (with due times, overdue highlighted), 团队待办, 退回给我."""

    permission = TASK_VIEW_PERMISSION

    def get(self, request):
        tab = request.GET.get("tab", "mine")
        if tab not in QUEUE_TABS:
            tab = "mine"
        reader = {"mine": selectors.tasks_mine, "team": selectors.tasks_team,
                  "returned": selectors.tasks_returned}[tab]
        page = self.paginate(reader(user=request.user))
        context = {"tab": tab, "page": page, "counts": selectors.queue_counts(user=request.user),
                   "now": timezone.now(), "query": f"tab={tab}"}
        return render(request, "workflow/queue.html", context)


# --- the ticket panel -----------------------------------------------------------------------

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
    if state is None:
        return render(request, template, {"ticket": ticket, "run": None}, status=status)
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
        if not can_act or task.status != TaskStatus.OPEN or user.pk not in task_holders(task) \
                or task.node not in graph.nodes:
            continue
        task.run = run  # the engine reads the version through it
        actions = task_allowed_actions(task, user, graph)
        visible, editable, required = node_field_rules(graph, task.node)
        editable |= set(graph.nodes[task.node].get("unlock") or [])
        shown = [{"label": schema.field_label(by_key[k]), "value": schema.display_value(by_key[k], ticket.data.get(k))}
                 for k in by_key if k in visible and k not in editable]
        form = (bound or {}).get(task.pk) or node_form_for(ticket, editable, required, task_pk=task.pk)
        if staff is None and ({"transfer", "cohandle"} & set(actions)):
            staff = list(staff_users())
        holders = {u.pk for u in task.holders}
        mine.append({
            "task": task, "node": graph.nodes[task.node], "actions": [(a, ACTION_LABELS[a]) for a in actions],
            "shown": shown, "form": form, "required": [schema.field_label(by_key[k]) for k in by_key if k in required],
            "targets": [(k, node_label(graph.nodes[k])) for k in return_targets(task, graph)]
            if "return" in actions else [],
            "staff": [u for u in staff or [] if u.pk not in holders],
            "errors": errors if bound and task.pk in bound else None,
            "values": act_values if bound and task.pk in bound else {},
        })
    context = {
        "ticket": ticket, "run": run, "workflow": run.version.workflow, "version": run.version,
        "diagram": diagram(graph_data, active=active, done=done), "tasks": tasks, "mine": mine,
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
        _visible, editable, required = node_field_rules(graph, task.node)
        editable |= set(graph.nodes[task.node].get("unlock") or [])
        act = TaskActForm(request.POST)
        form = node_form_for(ticket, editable, required, task_pk=task.pk, data=request.POST, files=request.FILES)
        errors = []
        if task.status != TaskStatus.OPEN:
            errors.append(_("This task is already finished."))
        elif request.user.pk not in task_holders(task):
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
            "node": task.node_name, "action": ACTION_LABELS[act.cleaned_data["_action"]]})
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
