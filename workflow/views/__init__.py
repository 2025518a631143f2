"""Workflow pages, one module per job: `designer` (the workflow list and the designer for
managers: nodes, transitions, live diagram, validate, publish, export/import), `queues` (我的待办 /
团队待办 / 退回给我) and `panel` (the ticket's workflow panel, where a handler fills their node's
fields and acts). This module holds what they share. Thin: workflow.selectors reads, the services,
designer and engine write, workflow.forms validates."""

import re

from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from ..graph import graph_svg

DESIGN_PERMISSION = "workflow.change_workflow"
TASK_VIEW_PERMISSION = "workflow.view_task"
TASK_ACT_PERMISSION = "workflow.change_task"
_VIEWBOX = re.compile(r'viewBox="0 0 ([\d.]+) ([\d.]+)"')


def is_htmx(request):
    return request.headers.get("HX-Request") == "true"


def condition_text(condition, field_labels=None):
    """A branch's condition in words (“优先级 等于 urgent”), as the designer's lists and the diagram show it."""
    from ..forms import CONDITION_FIELD_LABELS, OP_LABELS, condition_row

    row = condition_row(condition)
    if row is None:
        return _("custom condition") if condition else ""
    field, op, value = row
    label = CONDITION_FIELD_LABELS.get(field) or (field_labels or {}).get(field, field)
    return f"{label} {OP_LABELS.get(op, op)} {value}".strip()


def diagram(graph, *, active=(), done=(), field_labels=None):
    """graph_svg's drawing with its natural size (the page lets it scroll on a phone).
    `field_labels` ({"data.<key>": label}) words conditions on the template's fields."""
    svg = graph_svg(graph or {"nodes": [], "transitions": []}, active=set(active), done=set(done),
                    condition_label=lambda condition: condition_text(condition, field_labels))
    match = _VIEWBOX.search(svg)
    width, height = (float(match.group(1)), float(match.group(2))) if match else (0, 0)
    # graph_svg escapes every key and name it draws; the rest is numbers and fixed markup.
    return {"svg": mark_safe(svg), "width": round(width), "height": round(height)}  # noqa: S308


def errors_of(exc):
    """A ValidationError as a flat list of messages (a dict's keys do not matter to the reader)."""
    return [str(m) for m in exc.messages]
