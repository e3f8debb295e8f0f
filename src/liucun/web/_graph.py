"""A journey version's nodes as an SVG graph (server-side, no JavaScript).

Nodes are laid out in rows by their distance from the entry node (the first row is
where customers enter), edges are drawn from a node's bottom to its successors' tops
and carry the condition that takes them (``on event``, ``timeout``, a branch's filter,
a split's variant). The SVG scales to its container's width.
"""

from __future__ import annotations

from collections import deque
from html import escape

from liucun.journeys import JourneySpec
from liucun.journeys._spec import (
    AdaptiveSplitNode,
    BranchNode,
    ExitNode,
    SplitNode,
    WaitForNode,
    successors,
)

BOX_W, BOX_H, GAP_X, GAP_Y, PAD, LANE = 168, 50, 28, 58, 12, 22
#: Fill colour per node type (actions blue, waits grey, decisions amber, exits green).
COLOURS = {
    "message": "#dbeafe",
    "coupon": "#dbeafe",
    "points": "#dbeafe",
    "task": "#dbeafe",
    "tag": "#dbeafe",
    "webhook": "#dbeafe",
    "tier": "#dbeafe",
    "wait": "#edf2f7",
    "wait_for": "#edf2f7",
    "branch": "#fef3c7",
    "split": "#fef3c7",
    "adaptive_split": "#fef3c7",
    "exit": "#dcfce7",
}


def _edges(node: object) -> list[tuple[str, str]]:
    """(successor id, label) of ``node``."""
    if isinstance(node, WaitForNode):
        out = [(node.on_event, f"on {node.event}"), (node.on_timeout, "timeout")]
    elif isinstance(node, BranchNode):
        out = [(b.next, _short(b.when)) for b in node.branches] + [(node.otherwise, "otherwise")]
    elif isinstance(node, SplitNode | AdaptiveSplitNode):
        out = [(v.next, _short(getattr(v, "name", "") or "")) for v in node.variants]
        out.append((node.holdout_next, "holdout"))
    elif isinstance(node, ExitNode):
        out = []
    else:
        out = [(n, "") for n in successors(node)]  # type: ignore[arg-type]
    return [(target, label) for target, label in out if target is not None]


def _short(text: str, width: int = 26) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _rows(spec: JourneySpec) -> list[list[str]]:
    """Node ids in rows: a node sits one row below the lowest node that leads to it (the
    longest path from the entry node, so an exit shared by several branches is drawn
    below all of them); unreachable nodes go in a last row. A cycle stops the layering
    after as many rounds as there are nodes."""
    reach = {spec.first}
    queue = deque([spec.first])
    while queue:
        current = queue.popleft()
        for target, _ in _edges(spec.node(current)):
            if target not in reach:
                reach.add(target)
                queue.append(target)
    depth = dict.fromkeys(reach, 0)
    for _ in range(len(spec.nodes)):
        changed = False
        for n in spec.nodes:
            if n.id not in depth:
                continue
            for target, _ in _edges(n):
                if target in depth and target != spec.first and depth[target] < depth[n.id] + 1:
                    depth[target] = depth[n.id] + 1
                    changed = True
        if not changed:
            break
    last = max(depth.values(), default=0) + 1
    rows: dict[int, list[str]] = {}
    for n in spec.nodes:
        rows.setdefault(depth.get(n.id, last), []).append(n.id)
    return [rows[k] for k in sorted(rows)]


def journey_svg(spec: JourneySpec, counts: dict[str, str] | None = None) -> str:
    """The SVG of ``spec``'s graph; ``counts`` (node id → a short text, e.g. how many
    entered) is written under each node's type."""
    rows = _rows(spec)
    row_of = {node_id: i for i, row in enumerate(rows) for node_id in row}
    # edges that skip a row or go back up run down a lane right of the nodes
    side = [
        (n.id, target)
        for n in spec.nodes
        for target, _ in _edges(n)
        if target in row_of
        and (row_of[target] - row_of[n.id] > 1 or row_of[target] <= row_of[n.id])
    ]
    widest = max(len(r) for r in rows)
    inner = PAD * 2 + widest * BOX_W + (widest - 1) * GAP_X
    width = inner + (LANE * (len(side) + 1) + 40 if side else 0)
    height = PAD * 2 + len(rows) * BOX_H + (len(rows) - 1) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
        x0 = (inner - row_w) / 2
        for j, node_id in enumerate(row):
            where[node_id] = (x0 + j * (BOX_W + GAP_X), PAD + i * (BOX_H + GAP_Y))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-graph" role="img" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'aria-label="{escape(spec.name)}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#52606d"/></marker></defs>',
    ]
    labels: list[str] = []
    for n in spec.nodes:
        x, y = where[n.id]
        for target, label in _edges(n):
            if target not in where:
                continue
            tx, ty = where[target]
            if (n.id, target) in side:
                lane = inner + LANE * (side.index((n.id, target)) + 1)
                x1, y1, x2, y2 = x + BOX_W, y + BOX_H / 2, tx + BOX_W, ty + BOX_H / 2
                path = (
                    f"M{x1:.0f},{y1:.0f} L{lane - 10:.0f},{y1:.0f} Q{lane:.0f},{y1:.0f} "
                    f"{lane:.0f},{y1 + 10 if y2 > y1 else y1 - 10:.0f} "
                    f"L{lane:.0f},{y2 - 10 if y2 > y1 else y2 + 10:.0f} Q{lane:.0f},{y2:.0f} "
                    f"{lane - 10:.0f},{y2:.0f} L{x2:.0f},{y2:.0f}"
                )
                lx, ly, anchor = lane + 4, (y1 + y2) / 2 + 4, "start"
            else:
                x1, y1, x2, y2 = x + BOX_W / 2, y + BOX_H, tx + BOX_W / 2, ty
                mid = (y1 + y2) / 2
                path = (
                    f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
                )
                lx, ly, anchor = (x1 + x2) / 2, (y1 + y2) / 2 + 4, "middle"
            parts.append(
                f'<path d="{path}" fill="none" stroke="#52606d" stroke-width="1.4" '
                'marker-end="url(#arrow)"/>'
            )
            if label:
                labels.append(
                    f'<text x="{lx:.0f}" y="{ly:.0f}" class="edge" text-anchor="{anchor}">'
                    f"{escape(label)}</text>"
                )
    for n in spec.nodes:
        x, y = where[n.id]
        fill = COLOURS.get(n.type, "#ffffff")
        entry = ' stroke-width="2.5"' if n.id == spec.first else ' stroke-width="1"'
        parts.append(
            f'<g class="node" data-node="{escape(n.id)}"><rect x="{x:.0f}" y="{y:.0f}" '
            f'width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="#334e68"{entry}/>'
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 20:.0f}" class="id" text-anchor="middle">'
            f"{escape(_short(n.id, 22))}</text>"
        )
        sub = n.type + (f" · {counts[n.id]}" if counts and n.id in counts else "")
        parts.append(
            f'<text x="{x + BOX_W / 2:.0f}" y="{y + 38:.0f}" class="type" '
            f'text-anchor="middle">{escape(_short(sub, 28))}</text></g>'
        )
    parts.extend(labels)  # last: above the boxes and lines
    parts.append("</svg>")
    return "".join(parts)
