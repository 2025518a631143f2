"""Workflow graphs as plain data: the format, validation before publish (with messages a
manager can act on), and a server-rendered SVG diagram. No database here, except what a handler
rule kind's parameter check reads (a named person must be staff of the tenant in scope).

A graph is {"nodes": [...], "transitions": [...]}. A node: {"key", "kind", "name", and by kind:
"handler"/"backup" (handler rules, see workflow/routing.py), "handlers" + "mode" ("all"/"any") + "n"
for countersign, "time_limit" (minutes), "fields": {"visible", "editable", "required"},
"actions" (allowed actions), "unlock" (financial fields editable only here), "parts"
({"reserve": bool, "consume": bool}: spare parts reserved on entry / consumed on completion), "status"
("waiting" puts the ticket in waiting-on-customer), "public" (whether the customer's tracking page
shows the step: default true for task nodes, false for approvals and countersigns), "action" +
"params" for automatic nodes}.
A transition: {"from", "to", optional "condition" (workflow/conditions.py), "default": true on
a branch's fallback, "on": "approve"/"reject" after an approval node}."""

import re
from collections import defaultdict, deque

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from .conditions import condition_check

KINDS = ("start", "task", "approval", "countersign", "split", "join", "condition", "auto", "end")
HUMAN_KINDS = ("task", "approval", "countersign")
ACTIONS = ("submit", "approve", "reject", "return", "transfer", "cohandle", "split", "close")
DEFAULT_ACTIONS = {
    "task": ["submit", "return", "transfer", "cohandle"],
    "approval": ["approve", "reject", "transfer"],
    "countersign": ["approve", "reject"],
}
KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def transition_label(t):
    """“a → b” for messages (a dict's repr would depend on the key order the database kept)."""
    if isinstance(t, dict):
        return f"{t.get('from')} → {t.get('to')}"[:120]
    return str(t)[:120]


def node_label(node):
    """The node's name in the active language, always a string (a draft may hold anything)."""
    key = str(node.get("key", ""))
    name = node.get("name") or key
    if isinstance(name, dict):
        from django.utils.translation import get_language

        name = name.get(get_language() or "zh-hans") or name.get("zh-hans") or key
    return name if isinstance(name, str) else key


def _is_key(value):
    """A string, so it can be looked up (a malformed import may put lists or dicts anywhere)."""
    return isinstance(value, str)


def _index(graph):
    nodes = {n["key"]: n for n in graph.get("nodes", []) if isinstance(n, dict) and _is_key(n.get("key"))}
    out, inc = defaultdict(list), defaultdict(list)
    for t in graph.get("transitions", []):
        if isinstance(t, dict) and _is_key(t.get("from")) and _is_key(t.get("to")) and t["from"] in nodes \
                and t["to"] in nodes:
            out[t["from"]].append(t)
            inc[t["to"]].append(t)
    return nodes, out, inc


def _reachable(start, out):
    seen, queue = {start}, deque([start])
    while queue:
        key = queue.popleft()
        for t in out[key]:
            if t["to"] not in seen:
                seen.add(t["to"])
                queue.append(t["to"])
    return seen


def node_key_check(i, key, seen, errors):
    """Check node i's key: append what is wrong (not a key, or a repeat) to `errors` and add it to
    `seen`. False when the key is unusable and the node's other checks should be skipped."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        errors.append(_("Node %(i)d: the key must be lower-case letters, digits and _ (starting with a letter).")
                      % {"i": i})
        return False
    if key in seen:
        errors.append(_("Node “%(key)s” appears twice.") % {"key": key})
    seen.add(key)
    return True


def rule_check(key, slot, rule):
    """Messages about one handler rule of node `key`: an unknown kind, or what its kind's
    parameter form finds wrong (workflow/routing.py)."""
    from .routing import rule_kind

    kind = rule_kind(rule)
    if kind is None:
        return [_("Node “%(key)s”: unknown kind of %(slot)s “%(kind)s”.") % {
            "key": key, "slot": slot, "kind": str(rule.get("rule"))[:40]}]
    return [_("Node “%(key)s”, %(slot)s “%(label)s”: %(problem)s") % {
        "key": key, "slot": slot, "label": kind.label, "problem": problem} for problem in kind.problems(rule)]


def graph_validate(graph, *, field_keys=None, action_names=None):
    """Normalise and check a graph; raise ValidationError listing every problem found."""
    errors = []
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), list) or not isinstance(
            graph.get("transitions", []), list):
        raise ValidationError(_("A workflow is {\"nodes\": […], \"transitions\": […]}."))
    seen = set()
    for i, node in enumerate(graph["nodes"], start=1):
        if not isinstance(node, dict):
            errors.append(_("Node %(i)d is not an object.") % {"i": i})
            continue
        key = node.get("key")
        if not node_key_check(i, key, seen, errors):
            continue
        kind = node.get("kind")
        if kind not in KINDS:
            errors.append(_("Node “%(key)s”: unknown kind “%(kind)s”.") % {"key": key, "kind": kind})
            continue
        if kind in HUMAN_KINDS:
            rules = node.get("handlers") if kind == "countersign" else [node.get("handler")]
            if not isinstance(rules, list) or not rules or not all(
                    isinstance(r, dict) and _is_key(r.get("rule")) for r in rules):
                errors.append(_("Node “%(key)s” has no handler rule.") % {"key": key})
            else:
                for i, rule in enumerate(rules, start=1):
                    slot = _("handler rule") if i == 1 and kind != "countersign" else \
                        _("countersigner %(n)d's rule") % {"n": i}
                    errors += rule_check(key, slot, rule)
            backup = node.get("backup")
            if backup and (not isinstance(backup, dict) or not _is_key(backup.get("rule"))):
                errors.append(_("Node “%(key)s”: the backup handler rule is not valid.") % {"key": key})
            elif backup:
                errors += rule_check(key, _("backup handler rule"), backup)
            actions = node.setdefault("actions", list(DEFAULT_ACTIONS[kind]))
            bad = [a for a in actions if a not in ACTIONS] if isinstance(actions, list) else [actions]
            if bad:
                errors.append(_("Node “%(key)s”: unknown actions %(actions)s.") % {"key": key, "actions": bad})
            limit = node.get("time_limit")
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                      or not 1 <= limit <= 525600):
                errors.append(_("Node “%(key)s”: the time limit is minutes between 1 and 525600.") % {"key": key})
            if "public" in node and not isinstance(node["public"], bool):
                errors.append(_("Node “%(key)s”: “shown to the customer” is true or false.") % {"key": key})
            if kind == "countersign":
                mode = node.setdefault("mode", "all")
                if mode not in ("all", "any"):
                    errors.append(_("Node “%(key)s”: countersign mode is “all” or “any”.") % {"key": key})
                n = node.get("n", 1)
                if mode == "any" and (not isinstance(n, int) or n < 1):
                    errors.append(_("Node “%(key)s”: “any N” needs N of at least 1.") % {"key": key})
            parts = node.get("parts")
            if parts is not None and (not isinstance(parts, dict) or set(parts) - {"reserve", "consume"}
                                      or not all(isinstance(v, bool) for v in parts.values())):
                errors.append(_("Node “%(key)s”: parts must be {\"reserve\": true/false, \"consume\": true/false}.")
                              % {"key": key})
            field_spec = node.setdefault("fields", {})
            if not isinstance(field_spec, dict):
                errors.append(_("Node “%(key)s”: fields must be an object.") % {"key": key})
                field_spec = {}
            for part in ("visible", "editable", "required", "unlock"):
                keys = node.get("unlock", []) if part == "unlock" else field_spec.setdefault(part, [])
                if not isinstance(keys, list) or not all(_is_key(k) for k in keys):
                    errors.append(_("Node “%(key)s”: %(part)s must be a list of field keys.") % {
                        "key": key, "part": part})
                elif field_keys is not None:
                    unknown = [k for k in keys if k not in field_keys]
                    if unknown:
                        errors.append(_("Node “%(key)s”: unknown fields %(fields)s.") % {"key": key,
                                                                                       "fields": unknown})
        if kind == "auto" and action_names is not None and (
                not _is_key(node.get("action")) or node["action"] not in action_names):
            errors.append(_("Node “%(key)s”: unknown automatic action “%(action)s”.") % {
                "key": key, "action": node.get("action")})
        if kind == "auto" and not isinstance(node.get("params") or {}, dict):
            errors.append(_("Node “%(key)s”: the parameters of an automatic action are an object.") % {"key": key})
    nodes, out, inc = _index(graph)
    for t in graph.get("transitions", []):
        if not isinstance(t, dict) or not _is_key(t.get("from")) or not _is_key(t.get("to")) \
                or t["from"] not in nodes or t["to"] not in nodes:
            errors.append(_("A transition points at a node that does not exist: %(t)s.") % {"t": transition_label(t)})
            continue
        try:
            condition_check(t.get("condition"))
        except ValidationError as exc:
            errors.append(_("Transition %(a)s → %(b)s: %(error)s") % {"a": t["from"], "b": t["to"],
                                                                     "error": " ".join(exc.messages)})
    starts = [k for k, n in nodes.items() if n.get("kind") == "start"]
    ends = [k for k, n in nodes.items() if n.get("kind") == "end"]
    if len(starts) != 1:
        errors.append(_("A workflow needs exactly one start node."))
    if not ends:
        errors.append(_("A workflow needs at least one end node."))
    if len(starts) != 1:
        raise ValidationError(errors)
    # Node-level problems do not stop the analysis of the whole graph: a manager sees every
    # message at once rather than one round of fixes at a time.
    start = starts[0]
    for key, node in nodes.items():
        kind, n_out, n_in = node.get("kind"), len(out[key]), len(inc[key])
        label = {"key": key}
        if kind == "start" and (n_out != 1 or n_in):
            errors.append(_("The start node “%(key)s” needs exactly one way out and no way in.") % label)
        if kind == "end" and n_out:
            errors.append(_("The end node “%(key)s” cannot lead anywhere.") % label)
        if kind not in ("end",) and not n_out:
            errors.append(_("Node “%(key)s” leads nowhere.") % label)
        if kind == "split" and n_out < 2:
            errors.append(_("The split “%(key)s” needs at least two branches.") % label)
        if kind == "join" and n_in < 2:
            errors.append(_("The join “%(key)s” needs at least two incoming branches.") % label)
        if kind == "condition":
            defaults = [t for t in out[key] if t.get("default") or not t.get("condition")]
            if len(defaults) != 1:
                errors.append(_("The branch “%(key)s” needs exactly one default way (without a condition).")
                              % label)
        if kind == "approval" and not any(t.get("on", "approve") == "approve" for t in out[key]):
            errors.append(_("The approval “%(key)s” needs a way out on approve.") % label)
    reachable = _reachable(start, out)
    for key in nodes:
        if key not in reachable:
            errors.append(_("Node “%(key)s” cannot be reached from the start.") % {"key": key})
    reverse = defaultdict(list)
    for key, ts in out.items():
        for t in ts:
            reverse[t["to"]].append({"to": key})
    can_finish = set()
    for end in ends:
        can_finish |= _reachable(end, reverse)
    for key in reachable:
        if ends and key not in can_finish:
            errors.append(_("From node “%(key)s” no path reaches an end (a cycle with no exit).") % {"key": key})
    splits = [k for k, n in nodes.items() if n.get("kind") == "split"]
    for key, node in nodes.items():
        if node.get("kind") != "join":
            continue
        matched = any(
            sum(1 for t in out[s] if key in _reachable(t["to"], out)) >= 2 for s in splits
        )
        if not matched:
            errors.append(_("The join “%(key)s” has no split whose branches meet there.") % {"key": key})
    if errors:
        raise ValidationError(errors)
    return graph


# --- diagram ----------------------------------------------------------------------------

def graph_svg(graph, *, active=(), done=(), condition_label=None):
    """The diagram as an SVG string (workflow/drawing.py: a layered layout, top to bottom, current
    nodes highlighted). `condition_label(condition)` words a branch's condition for its edge."""
    from .drawing import diagram_svg  # the drawing reads node_label and _index from here

    return diagram_svg(graph, active=active, done=done, condition_label=condition_label)
