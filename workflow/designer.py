"""The designer's edits of a workflow draft: add, change, rename and delete nodes and
transitions, as plain functions over the graph dict (no database), plus `draft_change`, the one
write that applies such an edit under a row lock. A draft may be incomplete — graph_validate
judges it at publish — but it must always be well-formed enough to list and draw."""

import copy

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .graph import KINDS, node_key_check, transition_label
from .models import Workflow
from .services import workflow_draft_set

MAX_NODES = 100
MAX_TRANSITIONS = 300


def _graph(graph):
    graph = copy.deepcopy(graph or {})
    return {"nodes": list(graph.get("nodes") or []), "transitions": list(graph.get("transitions") or [])}


def node_keys(graph):
    return [n["key"] for n in (graph or {}).get("nodes") or [] if isinstance(n, dict) and isinstance(n.get("key"), str)]


def node_get(graph, key):
    return next((n for n in (graph or {}).get("nodes") or [] if isinstance(n, dict) and n.get("key") == key), None)


def node_save(graph, node, *, original_key=""):
    """The graph with `node` added, or replacing the node `original_key` (a renamed key is
    followed by the transitions that point at it)."""
    graph = _graph(graph)
    key = node["key"]
    keys = node_keys(graph)
    if original_key and original_key not in keys:
        raise ValidationError(_("The node “%(key)s” is no longer in the draft; reload the page.") % {
            "key": original_key})
    if key != original_key and key in keys:
        raise ValidationError({"key": _("Another node already has the key “%(key)s”.") % {"key": key}})
    if not original_key and len(graph["nodes"]) >= MAX_NODES:
        raise ValidationError(_("A workflow has at most %(n)d nodes.") % {"n": MAX_NODES})
    if original_key:
        graph["nodes"] = [node if isinstance(n, dict) and n.get("key") == original_key else n
                          for n in graph["nodes"]]
        if key != original_key:
            for t in graph["transitions"]:
                if isinstance(t, dict):
                    for end in ("from", "to"):
                        if t.get(end) == original_key:
                            t[end] = key
    else:
        graph["nodes"].append(node)
    return graph


def node_delete(graph, key):
    """The graph without the node and every transition from or to it."""
    graph = _graph(graph)
    if key not in node_keys(graph):
        raise ValidationError(_("The node “%(key)s” is no longer in the draft; reload the page.") % {"key": key})
    graph["nodes"] = [n for n in graph["nodes"] if not (isinstance(n, dict) and n.get("key") == key)]
    graph["transitions"] = [t for t in graph["transitions"]
                            if not (isinstance(t, dict) and key in (t.get("from"), t.get("to")))]
    return graph


def _same(transition, original):
    return (isinstance(transition, dict) and transition.get("from") == original.get("from")
            and transition.get("to") == original.get("to"))


def transition_at(graph, index, original):
    """The transition at `index`, if it still goes from/to what the editor showed."""
    transitions = (graph or {}).get("transitions") or []
    if index is None or not 0 <= index < len(transitions) or not _same(transitions[index], original):
        raise ValidationError(_("That transition is no longer in the draft; reload the page."))
    return transitions[index]


def transition_save(graph, transition, *, index=None, original=None):
    """The graph with `transition` added, or replacing the one at `index` (checked against
    `original`, so an edit never lands on a transition someone else moved)."""
    graph = _graph(graph)
    keys = node_keys(graph)
    for end in ("from", "to"):
        if transition[end] not in keys:
            raise ValidationError({end: _("There is no node “%(key)s”.") % {"key": transition[end]}})
    if index is not None:
        transition_at(graph, index, original or {})
    for i, t in enumerate(graph["transitions"]):
        if i != index and isinstance(t, dict) and t.get("from") == transition["from"] \
                and t.get("to") == transition["to"] and t.get("on") == transition.get("on"):
            raise ValidationError(_("There already is a transition %(a)s → %(b)s.") % {
                "a": transition["from"], "b": transition["to"]})
    if index is None:
        if len(graph["transitions"]) >= MAX_TRANSITIONS:
            raise ValidationError(_("A workflow has at most %(n)d transitions.") % {"n": MAX_TRANSITIONS})
        graph["transitions"].append(transition)
    else:
        graph["transitions"][index] = transition
    return graph


def transition_delete(graph, *, index, original):
    graph = _graph(graph)
    transition_at(graph, index, original)
    del graph["transitions"][index]
    return graph


def draft_check(graph):
    """Refuse a draft the designer could not show (from an import): wrong shapes, bad keys,
    unknown kinds, transitions to nowhere, or more than the limits. Completeness (handlers,
    reachability …) is graph_validate's job at publish."""
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes", []), list) or not isinstance(
            graph.get("transitions", []), list):
        raise ValidationError(_("A workflow is {\"nodes\": […], \"transitions\": […]}."))
    nodes, transitions = graph.get("nodes", []), graph.get("transitions", [])
    errors = []
    if len(nodes) > MAX_NODES:
        errors.append(_("A workflow has at most %(n)d nodes.") % {"n": MAX_NODES})
    if len(transitions) > MAX_TRANSITIONS:
        errors.append(_("A workflow has at most %(n)d transitions.") % {"n": MAX_TRANSITIONS})
    if errors:
        raise ValidationError(errors)
    seen = set()
    for i, node in enumerate(nodes, start=1):
        key = node.get("key") if isinstance(node, dict) else None
        if not node_key_check(i, key, seen, errors):
            continue
        if not isinstance(node.get("kind"), str) or node["kind"] not in KINDS:
            errors.append(_("Node “%(key)s”: unknown kind “%(kind)s”.") % {"key": key, "kind": node.get("kind")})
        name = node.get("name", "")
        if not (isinstance(name, str) and len(name) <= 60) and not (
                isinstance(name, dict) and all(isinstance(v, str) and len(v) <= 60 for v in name.values())):
            errors.append(_("Node “%(key)s”: the name is text of at most 60 characters.") % {"key": key})
    for t in transitions:
        if not isinstance(t, dict) or not isinstance(t.get("from"), str) or not isinstance(t.get("to"), str) \
                or t["from"] not in seen or t["to"] not in seen:
            errors.append(_("A transition points at a node that does not exist: %(t)s.") % {"t": transition_label(t)})
    if errors:
        raise ValidationError(errors)
    return graph


@transaction.atomic
def draft_change(*, workflow, change):
    """Apply `change(draft) -> new draft` to the workflow's current draft under a row lock, so
    two managers editing at once both keep their edits; returns the saved workflow."""
    locked = (Workflow.objects.select_for_update(of=("self",))
              .select_related("template__current_version", "current_version").get(pk=workflow.pk))
    graph = change(locked.draft)
    draft_check(graph)
    return workflow_draft_set(workflow=locked, graph=graph)
