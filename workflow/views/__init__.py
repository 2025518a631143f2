"""Workflow pages, one module per job: `designer` (the workflow list and the designer for
managers: nodes, transitions, live diagram, validate, publish, export/import), `queues` (我的待办 /
团队待办 / 退回给我) and `panel` (the ticket's workflow panel, where a handler fills their node's
fields and acts). This module holds what they share. Thin: workflow.selectors reads, the services,
designer and engine write, workflow.forms validates."""

import re

from django.utils.safestring import mark_safe

from ..graph import graph_svg

DESIGN_PERMISSION = "workflow.change_workflow"
TASK_VIEW_PERMISSION = "workflow.view_task"
TASK_ACT_PERMISSION = "workflow.change_task"
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
