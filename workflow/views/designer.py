"""The designer's pages: the list of workflows (create from a preset or blank), and the designer
of one workflow — its draft's nodes and transitions with their editors, the live diagram, and
validate / publish / export / import."""

import copy
import json

import yaml
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from scrm.views import ObjectView, StaffView
from tickets import fields as schema

from .. import designer, selectors
from ..forms import (
    KIND_SHORT,
    ImportForm,
    NodeForm,
    TransitionForm,
    WorkflowCreateForm,
    condition_row,
    template_fields,
)
from ..graph import HUMAN_KINDS, graph_validate, node_label
from ..presets import workflow_preset_get
from ..routing import rule_summary
from ..services import workflow_create, workflow_export, workflow_from_preset, workflow_import, workflow_publish
from . import DESIGN_PERMISSION, condition_text, diagram, errors_of, is_htmx

EXPORT_FORMATS = {"json": "application/json; charset=utf-8", "yaml": "application/yaml; charset=utf-8"}


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
        return NodeForm(data, fields=self.fields(), initial=initial, auto_id="node-%s",
                        taken_keys=[n["key"] for n in self.node_choices()])

    def transition_form(self, data=None, initial=None, kept=None):
        return TransitionForm(data, nodes=self.node_choices(), fields=self.fields(), initial=initial,
                              kept_condition=kept, auto_id="tr-%s")

    def field_labels(self):
        return {f"data.{f['key']}": schema.field_label(f) for f in self.fields()}

    def diagram(self):
        return diagram(self.workflow.draft, field_labels=self.field_labels())

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
            if kind == "countersign":  # signers 1…N, in the order the editor shows them
                handlers = [_("Countersigner %(n)d: %(rule)s") % {"n": i, "rule": h}
                            for i, h in enumerate(handlers, start=1)]
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
            "template": self.workflow.template, "diagram": self.diagram(),
            "import_form": import_form or ImportForm(), "publish_errors": publish_errors,
            "palette": [(k, KIND_SHORT[k]) for k in ("task", "approval", "countersign", "condition", "split", "join",
                                                     "auto", "end")],
        }
        return render(self.request, "workflow/designer.html", context, status=status)

    def render_left(self, status=200, **left):
        """The lists and editors (htmx), with the diagram and the publish status swapped out of band."""
        context = {**self.left_context(**left), **self.status_context(), "oob": True, "diagram": self.diagram()}
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
                return self.done(_("Node “%(label)s” saved.") % {"label": node_label(node)})
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
        # ?from=&to=: the diagram's connect mode (two nodes tapped) opens the form between them.
        form = self.transition_form(initial={"source": request.GET.get("from", ""),
                                             "target": request.GET.get("to", "")})
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
    from ..actions import ACTIONS
    from ..services import _field_keys

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
        return render(request, "workflow/_diagram.html", {"diagram": self.diagram()})
