"""The designer's diagram draws the real graph (issue 14 item 5): a branch's ways side by side
with their condition labels and the default visible, a reject way back as a curve beside the
graph, no two nodes on top of each other, names escaped, narrow enough for a phone."""

import itertools
import json
import re
from pathlib import Path

import pytest
from django.utils import translation

from tests.workflow.conftest import edge, node, role
from workflow.drawing import W, layout
from workflow.graph import graph_svg
from workflow.views import condition_text

PRESETS = Path(__file__).resolve().parents[2] / "workflow" / "presets"

BRANCHY = {
    "nodes": [
        node("start", "start", "开始"), node("accept", "task", "受理", handler=role("agent")),
        node("amount", "condition", "金额判断"),
        node("gm", "approval", "总经理审批", handler=role("admin")),
        node("review", "countersign", "经理会签", handlers=[role("manager"), role("admin")]),
        node("fix", "task", "处理", handler=role("engineer")), node("end", "end", "结束"),
    ],
    "transitions": [
        edge("start", "accept"), edge("accept", "amount"),
        edge("amount", "gm", condition={"all": [{"field": "opportunity.amount", "op": ">", "value": 500000}]}),
        edge("amount", "review", default=True),
        edge("gm", "fix", on="approve"), edge("gm", "accept", on="reject"),
        edge("review", "fix"), edge("fix", "end"),
    ],
}


def boxes(svg):
    """{key: (x, y)} of every node's rectangle or polygon's first point."""
    found = {}
    for key, body in re.findall(r'<g data-node="([^"]+)"[^>]*>(.*?)</g>', svg):
        match = re.search(r'<rect x="([\d.]+)" y="([\d.]+)"', body) or re.search(
            r'<polygon points="([\d.]+),([\d.]+)', body)
        found[key] = (float(match.group(1)), float(match.group(2)))
    return found


def test_a_branch_is_drawn_side_by_side_with_its_labels():
    with translation.override("zh-hans"):
        svg = graph_svg(BRANCHY, condition_label=condition_text)
    lay = layout(BRANCHY)
    assert lay.layer["gm"] == lay.layer["review"] == lay.layer["amount"] + 1
    assert abs(lay.x["gm"] - lay.x["review"]) >= W  # side by side, not on top of each other
    assert "若 商机金额 大于 500000" in svg  # the condition, in words (full text in the tooltip)
    assert svg.count('data-edge-label="default"') == 1 and "默认" in svg  # the default way is visible
    assert 'data-edge-label="approve"' in svg and "同意" in svg
    assert "会签 · 2 人会签" in svg


def test_a_reject_way_back_is_a_curve_beside_the_graph():
    svg = graph_svg(BRANCHY)
    [back] = re.findall(r'<path d="([^"]+)"[^>]*data-edge="back"', svg)
    assert " Q" in back  # rounded, not a straight line through the nodes
    lane = max(float(v) for v in re.findall(r"[LQ]([\d.]+),", back))
    lay = layout(BRANCHY)
    assert lane > max(lay.x[k] + W / 2 for k in ("accept", "amount", "gm", "review"))
    assert 'data-edge-label="reject"' in svg


@pytest.mark.parametrize("preset", sorted(p.name for p in PRESETS.glob("*.json")))
def test_no_two_nodes_overlap_and_every_node_is_drawn_once(preset):
    graph = json.loads((PRESETS / preset).read_text())
    graph = graph.get("graph", graph)
    svg = graph_svg(graph)
    found = boxes(svg)
    assert sorted(found) == sorted(n["key"] for n in graph["nodes"])
    lay = layout(graph)
    for row in lay.order:
        real = sorted(lay.x[k] for k in row if k in found)
        assert all(b - a >= W for a, b in itertools.pairwise(real))
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
    assert width <= 620  # top to bottom: a phone shows it at ≥ 0.6 scale


def test_names_are_escaped_and_current_nodes_marked():
    graph = {"nodes": [node("start", "start"), node("a", "task", "<script>alert(1)</script>", handler=role("agent")),
                       node("end", "end")],
             "transitions": [edge("start", "a"), edge("a", "end")]}
    svg = graph_svg(graph, active={"a"}, done={"start"})
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert re.findall(r'<g data-node="([a-z0-9_]+)" data-active="1">', svg) == ["a"]


def test_a_broken_draft_still_draws():
    graph = {"nodes": [node("start", "start"), node("loop", "task"), node("orphan", "task")],
             "transitions": [edge("start", "loop"), edge("loop", "loop"), edge("loop", "nowhere"), "junk"]}
    svg = graph_svg(graph)
    assert sorted(boxes(svg)) == ["loop", "orphan", "start"]
    assert 'data-edge="back"' in svg  # the self-loop


@pytest.mark.django_db
@pytest.mark.urls("tests.workflow.test_views")
def test_designer_says_draft_only_while_there_is_one(scope_a, wf_template, people, client_for):
    from django.urls import reverse

    from workflow.models import Workflow
    from workflow.services import workflow_create, workflow_draft_set, workflow_publish

    workflow = workflow_create(template=wf_template, name="维修流程")
    graph = json.loads(json.dumps(BRANCHY))
    workflow_draft_set(workflow=workflow, graph=graph)
    client = client_for(people["manager"])
    page = client.get(reverse("workflow-designer", args=[workflow.pk])).content.decode()
    assert "流程图（草稿）" in page
    workflow_publish(workflow=workflow)
    page = client.get(reverse("workflow-designer", args=[workflow.pk])).content.decode()
    assert "流程图（草稿）" not in page and "有未发布的修改" not in page and "已发布 v1" in page
    assert page.count('class="wf-diagram"') == 1 and "若 商机金额 大于 500000" in page
    graph["nodes"][1]["name"] = "客服受理"
    workflow_draft_set(workflow=Workflow.objects.get(pk=workflow.pk), graph=graph)
    page = client.get(reverse("workflow-designer", args=[workflow.pk])).content.decode()
    assert "流程图（草稿）" in page and "有未发布的修改" in page


@pytest.mark.django_db
@pytest.mark.urls("tests.workflow.test_views")
def test_the_diagram_opens_the_forms_from_the_palette_and_connect_mode(scope_a, wf_template, people, client_for):
    from django.urls import reverse

    from workflow.services import workflow_create, workflow_draft_set

    workflow = workflow_create(template=wf_template, name="维修流程")
    workflow_draft_set(workflow=workflow, graph=json.loads(json.dumps(BRANCHY)))
    client = client_for(people["manager"])
    page = client.get(reverse("workflow-designer", args=[workflow.pk])).content.decode()
    assert 'data-palette-kind="countersign"' in page and "data-wf-connect" in page and "data-wf-drop" in page
    assert f'data-transition-url="{reverse("workflow-transition", args=[workflow.pk])}"' in page
    # What the page's script asks for: the node form with the dropped kind, the transition form
    # between the two nodes tapped. Nothing is written until the form is submitted.
    node_form = client.get(reverse("workflow-node", args=[workflow.pk]) + "?kind=countersign",
                           HTTP_HX_REQUEST="true").content.decode()
    assert '<option value="countersign" selected>' in node_form
    form = client.get(reverse("workflow-transition", args=[workflow.pk]) + "?from=gm&to=end",
                      HTTP_HX_REQUEST="true").content.decode()
    assert re.search(r'name="source"[^>]*>.*?<option value="gm" selected>', form, re.S)
    assert re.search(r'name="target"[^>]*>.*?<option value="end" selected>', form, re.S)
    bogus = client.get(reverse("workflow-transition", args=[workflow.pk]) + "?from=<x>&to=nope",
                       HTTP_HX_REQUEST="true")
    assert bogus.status_code == 200 and "<x>" not in bogus.content.decode()
    assert draft_now(workflow) == BRANCHY


def draft_now(workflow):
    from workflow.models import Workflow

    return Workflow.objects.get(pk=workflow.pk).draft
