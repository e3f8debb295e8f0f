"""Journey files: YAML → :class:`~liucun.journeys.JourneySpec`, every problem at once.

:func:`load_journey` reads the file strictly (:func:`liucun.core.read_yaml`), validates
it into the models of :mod:`liucun.journeys._spec` and checks what needs the whole
file; given a workspace it also checks the file against the workspace (event types, the
loyalty program). Every problem is a sentence naming its YAML path, the bad value and
the fix, and they are all reported together in one :class:`JourneyError`::

    nodes[2].type: 'sleep' is not a node type; use one of wait, wait_for, …
    nodes[4].next: 'coupn' is not a node id; did you mean coupon? (ids: push, …)
    nodes: push → check → push has no wait; add a wait node to the cycle
    nodes[1].branches[0].when: 'clv > 100' is not a valid filter: unknown field 'clv' …
    trigger.event: 'purchase' is not an event type of this workspace; …

Filters name fields of a table: profile filters (``audience``, a branch's ``when``, a
segment trigger's and a wait_for's ``filter``) the customer profile
(:data:`~liucun.journeys._templates.PROFILE_FIELDS`, plus ``tag_NAME``); event filters
(an event trigger's and a wait_for's ``where``) the event (:data:`EVENT_FIELDS`, plus
``prop_NAME``: the event property NAME as text). :func:`profile_columns` and
:func:`event_columns` give the columns a filter needs, for the engine to provide.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ibis
from pydantic import ValidationError

from liucun.core import ConfigError, InvalidInput, close_match, read_yaml, validation_problems
from liucun.journeys._spec import (
    AdaptiveSplitNode,
    BranchNode,
    CouponNode,
    EventTrigger,
    ExitNode,
    JourneySpec,
    MessageNode,
    SegmentTrigger,
    SplitNode,
    TierUpgradeNode,
    WaitForNode,
    WaitNode,
    parse_duration,
    successors,
)
from liucun.journeys._templates import PROFILE_FIELDS, render_problems
from liucun.schema import STANDARD_EVENT_TYPES
from liucun.segments import FilterSyntaxError, parse_filter

#: Fields an event filter (``where``) may name: columns of the events table. Any event
#: property may be named too, as ``prop_NAME`` (text; NULL when the event lacks it).
EVENT_FIELDS: dict[str, str] = {
    "event_type": "string",
    "channel": "string",
    "category": "string",
    "revenue": "float64",
    "country": "string",
    "region": "string",
    "currency": "string",
    "order_id": "string",
    "account_id": "string",
}
#: Prefix of a profile filter's tag fields (``tag_vip``) and an event filter's
#: property fields (``prop_reason``).
TAG_PREFIX = "tag_"
PROPERTY_PREFIX = "prop_"

_STRING = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")

_TAG_NOUNS = {"nodes": "node type", "trigger": "trigger type"}
_DURATION_HINT = "is not a duration; write e.g. '3d', '12h' or '30m' (or a number of days)"
_SCALAR_HINTS = dict.fromkeys(("duration", "timeout", "every", "after"), _DURATION_HINT)
_MISSING_HINTS = {
    "timeout": "how long to wait at most, e.g. timeout: 14d",
    "name": "the journey's name, used by the commands, e.g. name: winback",
    "trigger": "what enrols a customer, e.g. trigger: {type: inactivity, days: 3}",
    "nodes": "the steps, e.g. nodes: [{id: push, type: message, …}]",
    "id": "a name for the node, unique in the file",
}


class JourneyError(InvalidInput):
    """A journey file is invalid; ``problems`` lists every problem, each a sentence."""

    def __init__(self, source: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}:\n{lines}")
        self.source = source
        self.problems = problems


def read_journey_text(path_or_text: str | Path) -> tuple[str, str]:
    """``(text, source)`` of a journey given as a file path or as YAML text.

    A :class:`~pathlib.Path`, or a one-line string naming an existing file or ending in
    ``.yaml``/``.yml``, is read as a file; any other string is the YAML itself.
    """
    if isinstance(path_or_text, str) and (
        "\n" in path_or_text
        or not (path_or_text.endswith((".yaml", ".yml")) or Path(path_or_text.strip()).is_file())
    ):
        return path_or_text, "the journey"
    path = Path(path_or_text)
    if not path.is_file():
        raise ConfigError(f"{path} does not exist; pass the journey's YAML file")
    return path.read_text(encoding="utf-8"), str(path)


def load_journey(path_or_text: str | Path, *, ws: Any = None) -> JourneySpec:
    """The journey in a YAML file (or YAML text), validated (see the module docstring);
    with ``ws``, checked against that workspace too.

    Raises
    ------
    JourneyError
        The file is not a valid journey; the message lists every problem.
    InvalidInput
        The text is not YAML that journey files may use (the message gives the line).
    ConfigError
        The file does not exist.
    """
    text, source = read_journey_text(path_or_text)
    return parse_journey(read_yaml(text, source=source), source=source, ws=ws)


def parse_journey(data: Any, *, source: str = "the journey", ws: Any = None) -> JourneySpec:
    """:func:`load_journey` on data already read (a mapping as YAML gives it)."""
    if not isinstance(data, dict):
        raise JourneyError(
            source, ["the file must be a mapping of keys such as name, trigger, nodes"]
        )
    try:
        spec = JourneySpec.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(
            JourneySpec,
            exc,
            tag_nouns=_TAG_NOUNS,
            scalar_hints=_SCALAR_HINTS,
            missing_hints=_MISSING_HINTS,
        )
        raise JourneyError(source, problems) from None
    problems = journey_problems(spec, ws=ws)
    if problems:
        raise JourneyError(source, problems)
    return spec


def journey_problems(spec: JourneySpec, *, ws: Any = None) -> list[str]:
    """Every problem of a journey the models cannot see: the graph, node settings,
    filters, templates, and (with ``ws``) event types and the loyalty program."""
    out = _graph_problems(spec)
    out += _node_problems(spec)
    out += _setting_problems(spec)
    out += _filter_problems(spec)
    out += render_problems(spec)
    if ws is not None:
        out += _event_type_problems(spec, ws)
        out += _loyalty_problems(spec, ws)
    return out


# -- the graph ---------------------------------------------------------------------------


def _targets(node: Any, i: int) -> list[tuple[str, str]]:
    """``(yaml path, target id)`` of every link of node ``i``."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, WaitForNode):
        out = [(f"nodes[{i}].on_event", node.on_event), (f"nodes[{i}].on_timeout", node.on_timeout)]
    elif isinstance(node, BranchNode):
        out = [(f"nodes[{i}].branches[{j}].next", b.next) for j, b in enumerate(node.branches)]
        out.append((f"nodes[{i}].otherwise", node.otherwise))
    elif isinstance(node, SplitNode | AdaptiveSplitNode):
        out = [(f"nodes[{i}].variants[{j}].next", v.next) for j, v in enumerate(node.variants)]
        out.append((f"nodes[{i}].holdout_next", node.holdout_next))
    elif not isinstance(node, ExitNode):
        out = [(f"nodes[{i}].next", node.next)]
    return [(where, t) for where, t in out if t is not None]


def _id_tip(target: str, known: list[str]) -> str:
    near = close_match(target, known)
    listed = ", ".join(known)
    return f"did you mean {near}? (ids: {listed})" if near else f"use one of {listed}"


def _is_wait(node: Any) -> bool:
    if isinstance(node, WaitForNode):
        return True
    if isinstance(node, WaitNode):
        return node.duration is None or parse_duration(node.duration).total_seconds() > 0
    return False


def _graph_problems(spec: JourneySpec) -> list[str]:
    out: list[str] = []
    ids = [n.id for n in spec.nodes]
    first_at: dict[str, int] = {}
    for i, node_id in enumerate(ids):
        if node_id in first_at:
            out.append(
                f"nodes[{i}].id: {node_id!r} is already the id of nodes[{first_at[node_id]}]; "
                "node ids must be unique, rename one"
            )
        else:
            first_at[node_id] = i
    known = list(first_at)
    for i, node in enumerate(spec.nodes):
        for where, target in _targets(node, i):
            if target not in first_at:
                out.append(f"{where}: {target!r} is not a node id; {_id_tip(target, known)}")
    if spec.start is not None and spec.start not in first_at:
        out.append(f"start: {spec.start!r} is not a node id; {_id_tip(spec.start, known)}")
        return out
    graph = {
        n.id: [t for t in successors(n) if t in first_at] for n in spec.nodes if n.id in first_at
    }
    seen = {spec.first}
    todo = [spec.first]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    broken = bool(out)  # a link to a missing node leaves nodes unreached: said already
    for node_id, i in first_at.items():
        if node_id not in seen and not broken:
            out.append(
                f"nodes[{i}]: node {node_id!r} cannot be reached from the start node "
                f"{spec.first!r}; link it from another node (next, a branch, a variant) or "
                "remove it"
            )
    waits = {n.id for n in spec.nodes if _is_wait(n)}
    for cycle in _cycles_without_wait(graph, waits, order=known):
        path = " → ".join([*cycle, cycle[0]])
        out.append(
            f"nodes: {path} has no wait; add a wait node (or a wait_for) to the cycle so a "
            "customer cannot loop without pause"
        )
    return out


def _cycles_without_wait(
    graph: dict[str, list[str]], waits: set[str], *, order: list[str]
) -> list[list[str]]:
    """One cycle per strongly connected group of the graph left without wait nodes."""
    sub = {n: [t for t in ts if t not in waits] for n, ts in graph.items() if n not in waits}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan, recursion is fine: a journey has few nodes
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sub[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            groups.append(group)

    for v in order:
        if v in sub and v not in index:
            visit(v)
    cycles = []
    for group in groups:
        members = set(group)
        start = min(group, key=order.index)
        if len(group) == 1 and start not in sub[start]:
            continue
        cycles.append(_path_back(sub, start, members))
    return sorted(cycles, key=lambda c: order.index(c[0]))


def _path_back(sub: dict[str, list[str]], start: str, members: set[str]) -> list[str]:
    """A shortest cycle through ``start`` inside ``members`` (breadth first)."""
    parents: dict[str, str] = {}
    todo = [start]
    while todo:
        nxt_round = []
        for v in todo:
            for w in sub[v]:
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if w in members and w not in parents:
                    parents[w] = v
                    nxt_round.append(w)
        todo = nxt_round
    return [start]  # pragma: no cover - a strongly connected group always has one


# -- node and journey settings -----------------------------------------------------------


def _node_problems(spec: JourneySpec) -> list[str]:
    out: list[str] = []
    for i, node in enumerate(spec.nodes):
        at = f"nodes[{i}]"
        if isinstance(node, WaitNode):
            keys = ("duration", "until_time", "until_property")
            given = [k for k in keys if getattr(node, k) is not None]
            if given not in (["duration"], ["until_time"], ["until_property"], list(keys[1:])):
                if not given:
                    out.append(
                        f"{at}: a wait needs how long: duration (e.g. 3d), until_time "
                        "(local HH:MM, e.g. '10:00') or until_property (birthday, "
                        "membership_renewal)"
                    )
                else:
                    out.append(
                        f"{at}: a wait takes one of duration, until_time, until_property "
                        f"(until_property may add until_time), not {' and '.join(given)}; "
                        "keep one"
                    )
        elif isinstance(node, WaitForNode):
            if node.event is None and node.filter is None:
                out.append(
                    f"{at}: a wait_for needs what to wait for: event (e.g. event: order) or "
                    'filter (a profile filter, e.g. filter: "orders >= 2")'
                )
            elif node.event is not None and node.filter is not None:
                out.append(
                    f"{at}: a wait_for waits for an event or a filter, not both; keep event "
                    "or filter (use a branch after it for the other)"
                )
            if node.where is not None and node.event is None:
                out.append(f"{at}.where: filters the awaited event; add event, or remove where")
        elif isinstance(node, CouponNode):
            if node.coupon is not None and (node.choose is not None or node.policy is not None):
                out.append(
                    f"{at}: give coupon (one coupon) or choose with policy (the policy picks), "
                    "not both"
                )
            elif node.coupon is None and node.choose is None:
                out.append(
                    f"{at}: a coupon node needs coupon (a coupon id of the loyalty program) or "
                    "choose: [ids…] with policy: uplift"
                )
            elif node.choose is not None and node.policy is None:
                out.append(f"{at}.policy: missing; choose needs policy: uplift to pick the offer")
            elif node.policy is not None and node.choose is None:
                out.append(f"{at}.choose: missing; {node.policy!r} picks one of choose: [ids]")
            if node.choose is not None and not node.choose:
                out.append(f"{at}.choose: empty; list the coupon ids to choose from")
        elif isinstance(node, MessageNode):
            if node.channel == "email" and not node.template.subject:
                out.append(
                    f"{at}.template.subject: an email needs a subject; add subject: "
                    '{en: "…", zh-CN: "…"}'
                )
        elif isinstance(node, SplitNode | AdaptiveSplitNode):
            names = [v.name for v in node.variants]
            twice = sorted({n for n in names if names.count(n) > 1})
            for name in twice:
                out.append(f"{at}.variants: {name!r} is named twice; variant names must be unique")
    return out


def _setting_problems(spec: JourneySpec) -> list[str]:
    out: list[str] = []
    if spec.control.share == 0 and not spec.control.allow_zero:
        out.append(
            "control.share: 0 leaves no control arm, so what the journey earns cannot be "
            "measured; use a share such as 0.1, or add allow_zero: true to run without one"
        )
    if spec.reentry.mode == "after" and spec.reentry.days is None:
        out.append("reentry.days: missing; mode 'after' needs days, e.g. {mode: after, days: 30}")
    if spec.reentry.mode != "after" and spec.reentry.days is not None:
        out.append(
            f"reentry.days: only read with mode 'after' (the mode is {spec.reentry.mode!r}); "
            "remove days or use mode: after"
        )
    return out


# -- filters -----------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return _NAME.findall(_STRING.sub(" ", text))


def profile_columns(text: str) -> dict[str, str]:
    """The columns (name → type) a profile filter ``text`` runs on: every
    :data:`PROFILE_FIELDS` field plus each ``tag_NAME`` it names (text)."""
    extra = {n: "string" for n in _names(text) if n.startswith(TAG_PREFIX) and len(n) > 4}
    return {**PROFILE_FIELDS, **extra}


def event_columns(text: str) -> dict[str, str]:
    """The columns (name → type) an event filter ``text`` runs on: every
    :data:`EVENT_FIELDS` field plus each ``prop_NAME`` it names (the property as text)."""
    extra = {n: "string" for n in _names(text) if n.startswith(PROPERTY_PREFIX) and len(n) > 5}
    return {**EVENT_FIELDS, **extra}


def filter_problem(where: str, text: str, kind: str) -> str | None:
    """The sentence for a filter that does not parse (``kind``: profile or event)."""
    columns = profile_columns(text) if kind == "profile" else event_columns(text)
    try:
        parse_filter(text, ibis.table(columns, name=f"journey_{kind}"))
    except FilterSyntaxError as exc:
        more = ""
        if str(exc).startswith("unknown field"):
            more = (
                "; a tag is named tag_NAME"
                if kind == "profile"
                else "; an event property is named prop_NAME"
            )
        return f"{where}: {text!r} is not a valid {kind} filter: {exc}{more}"
    return None


def _filters(spec: JourneySpec) -> list[tuple[str, str, str]]:
    """``(yaml path, text, kind)`` of every filter of the journey."""
    out: list[tuple[str, str | None, str]] = [("audience", spec.audience, "profile")]
    trigger = spec.trigger
    if isinstance(trigger, SegmentTrigger):
        out.append(("trigger.filter", trigger.filter, "profile"))
    if isinstance(trigger, EventTrigger):
        out.append(("trigger.where", trigger.where, "event"))
    for i, node in enumerate(spec.nodes):
        if isinstance(node, BranchNode):
            out += [
                (f"nodes[{i}].branches[{j}].when", b.when, "profile")
                for j, b in enumerate(node.branches)
            ]
        elif isinstance(node, WaitForNode):
            out.append((f"nodes[{i}].filter", node.filter, "profile"))
            out.append((f"nodes[{i}].where", node.where, "event"))
    return [(w, t, k) for w, t, k in out if t is not None]


def _filter_problems(spec: JourneySpec) -> list[str]:
    found = (filter_problem(where, text, kind) for where, text, kind in _filters(spec))
    return [p for p in found if p is not None]


# -- against a workspace -----------------------------------------------------------------


def event_types(ws: Any) -> list[str]:
    """The event types of ``ws``: the standard ones and ``[ingest] custom_event_types``."""
    return [*STANDARD_EVENT_TYPES, *ws.settings.ingest.custom_event_types]


def _event_type_problems(spec: JourneySpec, ws: Any) -> list[str]:
    known = event_types(ws)
    refs: list[tuple[str, str | None]] = [("goal.event", spec.goal.event)]
    if isinstance(spec.trigger, EventTrigger):
        refs.insert(0, ("trigger.event", spec.trigger.event))
    for i, node in enumerate(spec.nodes):
        if isinstance(node, WaitForNode):
            refs.append((f"nodes[{i}].event", node.event))
    out = []
    for where, name in refs:
        if name is not None and name not in known:
            near = close_match(name, known)
            tip = f"did you mean {near}? " if near else ""
            out.append(
                f"{where}: {name!r} is not an event type of this workspace; {tip}use a "
                "standard type (order, visit, add_to_cart, delivery, …) or add it to "
                "[ingest] custom_event_types in liucun.toml"
            )
    return out


def _loyalty_problems(spec: JourneySpec, ws: Any) -> list[str]:
    """Coupon ids and tier names against the program in force (skipped when no program
    is applied: the actions then fail when they run)."""
    from liucun.loyalty import DEFAULT_PROGRAM, active_program

    programs: dict[str, Any] = {}

    def program(name: str | None) -> Any:
        key = name or DEFAULT_PROGRAM
        if key not in programs:
            try:
                programs[key] = active_program(ws, key)
            except ConfigError:
                programs[key] = None
        return programs[key]

    out: list[str] = []
    for i, node in enumerate(spec.nodes):
        if isinstance(node, CouponNode):
            prog = program(node.program)
            if prog is None:
                continue
            ids = [c.id for c in prog.coupons]
            refs = [(f"nodes[{i}].coupon", node.coupon)] if node.coupon else []
            refs += [(f"nodes[{i}].choose[{j}]", c) for j, c in enumerate(node.choose or [])]
            for where, ref in refs:
                if ref not in ids:
                    near = close_match(ref, ids)
                    tip = f"did you mean {near}? " if near else ""
                    out.append(
                        f"{where}: {ref!r} is not a coupon of the loyalty program in force; "
                        f"{tip}(coupons: {', '.join(ids) or 'none defined'})"
                    )
        elif isinstance(node, TierUpgradeNode):
            prog = program(node.program)
            if prog is None:
                continue
            tiers = prog.tier_names()
            if node.tier not in tiers:
                near = close_match(node.tier, tiers)
                tip = f"did you mean {near}? " if near else ""
                out.append(
                    f"nodes[{i}].tier: {node.tier!r} is not a tier of the loyalty program in "
                    f"force; {tip}(tiers: {', '.join(tiers) or 'none defined'})"
                )
    return out
