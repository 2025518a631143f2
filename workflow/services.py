"""Workflow configuration writes: create, edit the draft, publish a frozen version, export and
import, and the presets that come with the template presets. The engine (engine.py) runs them."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from .actions import ACTIONS, action_params_errors
from .graph import graph_validate
from .models import Workflow, WorkflowVersion
from .presets import workflow_preset_get

EXPORT_FORMAT = "scrm.workflow/1"


def _field_keys(template):
    version = template.current_version
    fields = version.fields if version is not None else template.draft_fields
    return {f["key"] for f in fields}


@transaction.atomic
def workflow_create(*, template, name="", graph=None):
    if Workflow.objects.filter(template=template).exists():
        raise ValidationError({"template": _("This template already has a workflow.")})
    workflow = Workflow(tenant_id=template.tenant_id, template=template, name=(name or template.name)[:60],
                        draft=graph or {"nodes": [], "transitions": []})
    workflow.full_clean(exclude=["tenant", "template", "current_version"])
    workflow.save()
    return workflow


@transaction.atomic
def workflow_draft_set(*, workflow, graph, name=None):
    """Save a draft; it may be incomplete (validation happens at publish), but must be a graph."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes", []), list) or not isinstance(
            graph.get("transitions", []), list):
        raise ValidationError({"graph": _("A workflow is {\"nodes\": […], \"transitions\": […]}.")})
    workflow.draft = {"nodes": graph.get("nodes", []), "transitions": graph.get("transitions", [])}
    if name:
        workflow.name = name[:60]
    workflow.save(update_fields=["draft", "name", "updated_at"])
    return workflow


@transaction.atomic
def workflow_publish(*, workflow, actor=None):
    """Validate the draft against its template's fields and freeze it as a new version."""
    # of=("self",): PostgreSQL refuses FOR UPDATE on the nullable side of the outer join.
    workflow = (Workflow.objects.select_for_update(of=("self",)).select_related("template__current_version")
                .get(pk=workflow.pk))
    graph = graph_validate(workflow.draft, field_keys=_field_keys(workflow.template), action_names=set(ACTIONS))
    if errors := action_params_errors(graph):
        raise ValidationError({"graph": errors})
    current = workflow.current_version
    if current is not None and current.graph == graph:
        raise ValidationError({"graph": _("Nothing changed since version %(n)d.") % {"n": current.number}})
    number = (workflow.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = WorkflowVersion.objects.create(tenant_id=workflow.tenant_id, workflow=workflow, number=number,
                                             graph=graph, published_by=actor)
    workflow.current_version = version
    workflow.save(update_fields=["current_version", "updated_at"])
    return version


def workflow_export(*, workflow):
    return {"format": EXPORT_FORMAT, "name": workflow.name, "template": workflow.template.slug,
            "graph": workflow.draft}


@transaction.atomic
def workflow_import(*, template, payload, publish=False, actor=None):
    if not isinstance(payload, dict) or payload.get("format", EXPORT_FORMAT) != EXPORT_FORMAT:
        raise ValidationError(_("The file does not describe a workflow."))
    graph = payload.get("graph")
    workflow = Workflow.objects.filter(template=template).first()
    if workflow is None:
        workflow = workflow_create(template=template, name=str(payload.get("name") or template.name))
    workflow_draft_set(workflow=workflow, graph=graph, name=str(payload.get("name") or ""))
    if publish:
        workflow.current_version = workflow_publish(workflow=workflow, actor=actor)
    return workflow


@transaction.atomic
def workflow_from_preset(*, template, preset_slug, publish=True, actor=None):
    preset = workflow_preset_get(preset_slug)
    if preset is None:
        raise ValidationError({"preset": _("Unknown workflow preset.")})
    return workflow_import(template=template, payload=preset, publish=publish, actor=actor)
