"""The workflow diagram: a layered (Sugiyama-style) layout of the graph, top to bottom, drawn as
SVG on the server. Pure Python over the graph's plain data, no database and no script, so the
ticket panel, the designer and a phone all get the same picture.

Why server-side: the drawing needs no JavaScript library (nothing to vendor, nothing for the CSP
to allow), renders in the page's first response, and is testable as a function. The steps:
back edges (loops, reject ways back) are found by a depth-first walk from the start and drawn
as curves beside the graph; the rest is a DAG, layered by longest path; edges longer than one
layer get invisible waypoints so they route around nodes; each layer is ordered by barycentre
sweeps (branches side by side, in the order the graph lists them, the default last) and placed
by averaging the left- and right-packed positions around the neighbours' centres."""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.translation import gettext as _

from .graph import _index, node_label

W, H = 148, 46  # a node
DUMMY_W = 14  # a waypoint of a long edge
GAP = 22  # between neighbours in a layer
LAYER_GAP = 58  # between layers (edge labels sit here)
MARGIN = 14
LABEL_CHARS = 12

COLOURS = {"start": "#e7f5ec", "end": "#e7f5ec", "task": "#ffffff", "approval": "#e8f4fd",
           "countersign": "#fdecec", "split": "#eef2ff", "join": "#eef2ff", "condition": "#fff4e0",
           "auto": "#f3e8ff"}
EDGE_STYLES = {  # stroke, dash, label fill, label text colour
    "plain": ("#8a94a6", "", "", ""),
    "default": ("#5b6477", "", "#eef0f4", "#3b4252"),
    "condition": ("#b7791f", "", "#fff4e0", "#7a4d00"),
    "approve": ("#198754", "", "#e7f5ec", "#0f5132"),
    "reject": ("#c0392b", "6 4", "#fdecec", "#842029"),
    "back": ("#8a94a6", "6 4", "#f3f4f7", "#3b4252"),
}


@dataclass
class Edge:
    source: str
    target: str
    kind: str  # a key of EDGE_STYLES
    label: str = ""
    title: str = ""  # the full label, for the tooltip
    back: bool = False
    path: list[str] = field(default_factory=list)  # source, waypoints…, target


@dataclass
class Layout:
    nodes: dict
    layer: dict[str, int]
    x: dict[str, float]  # centre
    order: list[list[str]]
    edges: list[Edge]
    width: float = 0
    height: float = 0
    widths: dict[str, float] = field(default_factory=dict)


def _kind_text(node):
    from .forms import KIND_SHORT

    kind = node.get("kind")
    text = str(KIND_SHORT.get(kind, kind or ""))
    if kind == "countersign":
        signers = len(node.get("handlers") or []) or 1
        mode = (_("any %(n)d sign") % {"n": node.get("n", 1)} if node.get("mode") == "any"
                else _("all must sign"))
        text += " · " + (_("%(n)d signers") % {"n": signers} if signers > 1 else mode)
    elif kind == "auto" and node.get("action"):
        text += f" · {str(node['action'])[:16]}"
    return text


def _edge_style(t, source_kind, condition_label):
    """(kind, label, full label) of a transition."""
    on = t.get("on")
    if on == "reject":
        return "reject", _("reject"), _("reject")
    if on == "approve":
        return "approve", _("approve"), _("approve")
    if t.get("condition") and not t.get("default"):
        text = condition_label(t["condition"]) if condition_label else ""
        full = _("if %(condition)s") % {"condition": text} if text else _("if")
        return "condition", full, full
    if source_kind == "condition" or t.get("default"):
        return "default", _("default"), _("default")
    if source_kind == "approval":
        return "approve", _("approve"), _("approve")
    return "plain", "", ""


def _short(text, limit=LABEL_CHARS):
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _text_width(text, size):
    return sum(size if ord(c) > 0x2E80 else size * 0.58 for c in text)


def layout(graph, *, condition_label=None) -> Layout:
    nodes, out, _inc = _index(graph)
    keys = list(nodes)
    starts = [k for k in keys if nodes[k].get("kind") == "start"]
    # 1. Back edges: an edge into a node on the depth-first path (a loop, a reject way back).
    roots = starts + [k for k in keys if k not in starts]
    state: dict[str, int] = {}
    pre: dict[str, int] = {}
    back: set[int] = set()
    for root in roots:
        if root in state:
            continue
        state[root] = 1
        pre[root] = len(pre)
        stack = [(root, iter(out[root]))]
        while stack:
            key, ways = stack[-1]
            t = next(ways, None)
            if t is None:
                state[key] = 2
                stack.pop()
                continue
            to = t["to"]
            if state.get(to) == 1:
                back.add(id(t))
            elif to not in state:
                state[to] = 1
                pre[to] = len(pre)
                stack.append((to, iter(out[to])))
    # 2. Layers by longest path over the forward edges.
    forward = {k: [t for t in out[k] if id(t) not in back] for k in keys}
    indegree = dict.fromkeys(keys, 0)
    for k in keys:
        for t in forward[k]:
            indegree[t["to"]] += 1
    layer = dict.fromkeys(keys, 0)
    ready = sorted((k for k in keys if not indegree[k]), key=lambda k: pre.get(k, 0))
    while ready:
        key = ready.pop(0)
        for t in forward[key]:
            layer[t["to"]] = max(layer[t["to"]], layer[key] + 1)
            indegree[t["to"]] -= 1
            if not indegree[t["to"]]:
                ready.append(t["to"])
    # 3. Edges, with waypoints on long forward edges.
    edges: list[Edge] = []
    widths = {k: float(W) for k in keys}
    layer_of = dict(layer)
    for key in keys:
        for t in out[key]:
            kind, label, title = _edge_style(t, nodes[key].get("kind"), condition_label)
            edge = Edge(key, t["to"], kind, _short(label), title, back=id(t) in back)
            if edge.back:
                edge.kind = "reject" if kind == "reject" else "back"
                edge.path = [key, t["to"]]
            else:
                path = [key]
                for step in range(layer[key] + 1, layer[t["to"]]):
                    dummy = f"\x00{len(edges)}:{step}"
                    layer_of[dummy] = step
                    # The first waypoint of a labelled edge is as wide as its label: the label sits there.
                    widths[dummy] = max(DUMMY_W, _text_width(edge.label, 10) + 10) if (
                        edge.label and step == layer[key] + 1) else DUMMY_W
                    path.append(dummy)
                path.append(t["to"])
                edge.path = path
            edges.append(edge)
    # 4. Order within layers: barycentre sweeps, ties kept in the graph's own order.
    depth = max(layer_of.values(), default=0) + 1
    order: list[list[str]] = [[] for _ in range(depth)]
    rank = {k: (pre.get(k, len(pre)), 0) for k in keys}
    for i, edge in enumerate(edges):
        for j, point in enumerate(edge.path[1:-1]):
            rank[point] = (pre.get(edge.source, 0), i * 100 + j + 1)
    for k in sorted(layer_of, key=lambda k: rank[k]):
        order[layer_of[k]].append(k)
    up, down = defaultdict(list), defaultdict(list)
    for edge in edges:
        if not edge.back:
            for a, b in zip(edge.path, edge.path[1:], strict=False):
                down[a].append(b)
                up[b].append(a)
    for sweep in range(6):
        going_down = sweep % 2 == 0
        rows = range(1, depth) if going_down else range(depth - 2, -1, -1)
        for row in rows:
            neighbours = up if going_down else down
            position = {k: i for i, k in enumerate(order[row - 1 if going_down else row + 1])}
            current = {k: i for i, k in enumerate(order[row])}

            def bary(k, neighbours=neighbours, position=position, current=current):
                linked = [position[n] for n in neighbours[k] if n in position]
                return (sum(linked) / len(linked), current[k]) if linked else (current[k], current[k])

            order[row].sort(key=bary)
    # 5. Coordinates: centres packed around the neighbours' mean, balanced left/right.
    x: dict[str, float] = {}
    for keys_in_layer in order:
        cursor = 0.0
        for k in keys_in_layer:
            x[k] = cursor + widths[k] / 2
            cursor += widths[k] + GAP
    for sweep in range(8):
        going_down = sweep % 2 == 0
        rows = range(1, depth) if going_down else range(depth - 2, -1, -1)
        neighbours = up if going_down else down
        for row in rows:
            keys_row = order[row]
            desired = []
            for k in keys_row:
                linked = [x[n] for n in neighbours[k]]
                desired.append(sum(linked) / len(linked) if linked else x[k])
            sep = [(widths[p] + widths[q]) / 2 + GAP for p, q in itertools.pairwise(keys_row)]
            left, right = list(desired), list(desired)
            for i in range(1, len(keys_row)):
                left[i] = max(left[i], left[i - 1] + sep[i - 1])
            for i in range(len(keys_row) - 2, -1, -1):
                right[i] = min(right[i], right[i + 1] - sep[i])
            for k, lo, hi in zip(keys_row, left, right, strict=True):
                x[k] = (lo + hi) / 2
    lowest = min((x[k] - widths[k] / 2 for k in x), default=0)
    for k in x:
        x[k] += MARGIN - lowest
    width = max((x[k] + widths[k] / 2 for k in x), default=0) + MARGIN
    return Layout(nodes=nodes, layer=layer_of, x=x, order=order, edges=edges, width=width,
                  height=MARGIN * 2 + depth * H + (depth - 1) * LAYER_GAP, widths=widths)


def _top(layer):
    return MARGIN + layer * (H + LAYER_GAP)


def _label(parts, cx, cy, edge, style):
    stroke, _dash, fill, colour = EDGE_STYLES[style]
    width = _text_width(edge.label, 10) + 10
    parts.append(f'<g class="wf-edge-label" data-edge-label="{escape(edge.kind)}"><title>{escape(edge.title)}</title>'
                 f'<rect x="{cx - width / 2:.1f}" y="{cy - 8:.1f}" width="{width:.1f}" height="16" rx="8" '
                 f'fill="{fill}" stroke="{stroke}" stroke-width=".8"/>'
                 f'<text x="{cx:.1f}" y="{cy + 3.5:.1f}" font-size="10" text-anchor="middle" fill="{colour}">'
                 f'{escape(edge.label)}</text></g>')


def diagram_svg(graph, *, active=(), done=(), condition_label=None):
    """The diagram as an SVG string; current nodes (`active`) highlighted, `done` ones green."""
    lay = layout(graph, condition_label=condition_label)
    nodes, x, widths = lay.nodes, lay.x, lay.widths
    edge_parts: list[str] = []
    label_parts: list[str] = []
    # Where edges leave and enter a node: spread along its bottom / top, in the order of the far end.
    leaving, entering = defaultdict(list), defaultdict(list)
    for edge in lay.edges:
        if not edge.back:
            leaving[edge.path[0]].append(edge)
            entering[edge.path[-1]].append(edge)

    def spread(key, edge, group, far):
        items = sorted(group[key], key=lambda e: x[far(e)])
        n = len(items)
        step = min(26.0, (W - 20) / max(n, 1))
        return x[key] + (items.index(edge) - (n - 1) / 2) * step

    right_edge = lay.width
    back_count = 0
    for edge in lay.edges:
        stroke, dash, _fill, _colour = EDGE_STYLES[edge.kind]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if edge.back:
            # Out of the source, up a lane right of everything in between, into the target: from
            # the side when nothing stands to its right in its layer, else from below/above.
            a, b = edge.source, edge.target
            la, lb = lay.layer[a], lay.layer[b]
            rows = range(min(la, lb), max(la, lb) + 1)
            lane = max(x[k] + widths[k] / 2 for r in rows for k in lay.order[r]) + 24 + back_count * 16
            r = 8.0
            if lay.order[la][-1] == a:
                sx, sy = x[a] + W / 2, _top(la) + H / 2 + 6
                d = f"M{sx:.1f},{sy:.1f} L{lane - r:.1f},{sy:.1f} Q{lane:.1f},{sy:.1f} {lane:.1f},{sy - r:.1f}"
            else:
                sx, sy = x[a] + W / 2 - 18, _top(la) + H + LAYER_GAP * 0.3 + back_count * 4
                d = (f"M{sx:.1f},{_top(la) + H:.1f} L{sx:.1f},{sy - r:.1f} Q{sx:.1f},{sy:.1f} {sx + r:.1f},{sy:.1f} "
                     f"L{lane - r:.1f},{sy:.1f} Q{lane:.1f},{sy:.1f} {lane:.1f},{sy - r:.1f}")
            if lay.order[lb][-1] == b:
                ex, ey = x[b] + W / 2, _top(lb) + H / 2 - 6
                d += f" L{lane:.1f},{ey + r:.1f} Q{lane:.1f},{ey:.1f} {lane - r:.1f},{ey:.1f} L{ex:.1f},{ey:.1f}"
            else:
                ex, ey = x[b] + W / 2 - 18, _top(lb) - LAYER_GAP * 0.3 - back_count * 4
                d += (f" L{lane:.1f},{ey + r:.1f} Q{lane:.1f},{ey:.1f} {lane - r:.1f},{ey:.1f} L{ex + r:.1f},{ey:.1f} "
                      f"Q{ex:.1f},{ey:.1f} {ex:.1f},{ey + r:.1f} L{ex:.1f},{_top(lb):.1f}")
            back_count += 1
            edge_parts.append(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="1.5"{dash_attr} '
                              f'stroke-linejoin="round" marker-end="url(#wf-arrow-{edge.kind})" data-edge="back"/>')
            if edge.label:
                _label(label_parts, lane, (sy + ey) / 2, edge, edge.kind)
                right_edge = max(right_edge, lane + _text_width(edge.label, 10) / 2 + 8)
            right_edge = max(right_edge, lane + 6)
            continue
        points = [(spread(edge.source, edge, leaving, lambda e: e.path[1]), _top(lay.layer[edge.source]) + H)]
        for waypoint in edge.path[1:-1]:
            top = _top(lay.layer[waypoint])
            points += [(x[waypoint], top), (x[waypoint], top + H)]
        points.append((spread(edge.target, edge, entering, lambda e: e.path[-2]), _top(lay.layer[edge.target])))
        d = f"M{points[0][0]:.1f},{points[0][1]:.1f}"
        for (ax, ay), (bx, by) in itertools.pairwise(points):
            if ax == bx and by - ay == H:  # through a waypoint: straight down
                d += f" L{bx:.1f},{by:.1f}"
            else:
                mid = (by - ay) / 2
                d += f" C{ax:.1f},{ay + mid:.1f} {bx:.1f},{by - mid:.1f} {bx:.1f},{by:.1f}"
        edge_parts.append(f'<path d="{d}" fill="none" stroke="{stroke}" stroke-width="1.5"{dash_attr} '
                          f'marker-end="url(#wf-arrow-{edge.kind})" data-edge="{escape(edge.kind)}"/>')
        if edge.label:
            # On the edge, just above where it enters its next node or waypoint: sibling branches'
            # labels are then as far apart as the branches themselves.
            bx, by = points[1]
            _label(label_parts, bx, by - 14, edge, edge.kind)
    node_parts = []
    for key, node in nodes.items():
        kind = node.get("kind")
        cx, top = x[key], _top(lay.layer[key])
        left = cx - W / 2
        fill = COLOURS.get(kind, "#fff")
        stroke, sw = ("#1f5eff", 3) if key in active else (("#198754", 1.6) if key in done else ("#b8c0cc", 1.2))
        marker = ' data-active="1"' if key in active else ""
        name = node_label(node)
        if kind == "condition":
            shape = (f'<polygon points="{left:.1f},{top + H / 2:.1f} {left + 16:.1f},{top:.1f} {left + W - 16:.1f},'
                     f'{top:.1f} {left + W:.1f},{top + H / 2:.1f} {left + W - 16:.1f},{top + H:.1f} '
                     f'{left + 16:.1f},{top + H:.1f}" fill="{fill}" stroke="{stroke}" stroke-width="{sw}"/>')
        else:
            rx = H / 2 if kind in ("start", "end") else 7
            shape = (f'<rect x="{left:.1f}" y="{top}" width="{W}" height="{H}" rx="{rx}" fill="{fill}" '
                     f'stroke="{stroke}" stroke-width="{sw}"/>')
        if kind == "countersign":  # a second sheet behind: several people sign
            shape = (f'<rect x="{left + 4:.1f}" y="{top - 4}" width="{W}" height="{H}" rx="7" fill="{fill}" '
                     f'stroke="{stroke}" stroke-width="1"/>') + shape
        small = _kind_text(node) if kind not in ("start", "end") else ""
        name_y = top + (H / 2 - 2 if small else H / 2 + 4.5)
        text = (f'<text x="{cx:.1f}" y="{name_y:.1f}" font-size="13" font-weight="600" text-anchor="middle" '
                f'fill="#1d2330">{escape(_short(name, 10))}</text>')
        if small:
            text += (f'<text x="{cx:.1f}" y="{top + H / 2 + 13:.1f}" font-size="10" text-anchor="middle" '
                     f'fill="#5b6477">{escape(_short(small, 16))}</text>')
        node_parts.append(f'<g data-node="{escape(key)}"{marker}><title>{escape(name)}</title>{shape}{text}</g>')
    width, height = round(right_edge + MARGIN / 2), round(lay.height)
    markers = "".join(
        f'<marker id="wf-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        f'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{style[0]}"/></marker>'
        for name, style in EDGE_STYLES.items())
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="wf-diagram" role="img" '
        f'aria-label="{escape(_("Workflow diagram"))}"><defs>{markers}</defs>',
        *edge_parts, *node_parts, *label_parts, "</svg>"])
