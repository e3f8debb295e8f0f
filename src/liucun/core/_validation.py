"""Pydantic validation errors as sentences for hand-written files (loyalty programs,
journeys): the key path as the file spells it, the bad value, and the fix.

::

    nodes[2].type: 'sleep' is not a node type; use one of wait, wait_for, …
    tier: unknown key; did you mean tiers?
    points.validity.amount: 0 is not valid: Input should be greater than 0

Discriminated unions (a node's ``type``) are followed by their tag, so an unknown key
inside a node gets the keys of *that* node type, and the tag never shows in the path.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError


def yaml_path(loc: tuple[int | str, ...]) -> str:
    """``('nodes', 2, 'next')`` as ``nodes[2].next`` (empty for the top level)."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def close_match(word: str, known: typing.Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The entry of ``known`` nearest to ``word`` (difflib), or None when none is close."""
    near = difflib.get_close_matches(str(word), list(known), n=1, cutoff=cutoff)
    return near[0] if near else None


def validation_problems(
    root: type[BaseModel],
    exc: ValidationError,
    *,
    tag_nouns: Mapping[str, str] | None = None,
    scalar_hints: Mapping[str, str] | None = None,
    missing_hints: Mapping[str, str] | None = None,
) -> list[str]:
    """One sentence per problem of ``exc`` (raised validating ``root``), in order.

    ``tag_nouns`` names what a discriminated field holds, by field name (``{"nodes":
    "node type"}``) for the message on an unknown tag; ``scalar_hints`` replaces the
    message of a field whose type is a union of scalars (``{"duration": "is not a
    duration; write e.g. '3d'"}``: one sentence instead of one per member);
    ``missing_hints`` adds an example to a missing field's ``add it``.
    """
    out: list[str] = []
    seen: set[str] = set()
    for err in exc.errors():
        text = _problem(root, err, tag_nouns or {}, scalar_hints or {}, missing_hints or {})
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def _problem(
    root: type[BaseModel],
    err: Any,
    tag_nouns: Mapping[str, str],
    scalar_hints: Mapping[str, str],
    missing_hints: Mapping[str, str],
) -> str:
    raw = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    loc, model, scalar_union, annotation = _walk(root, raw)
    where = yaml_path(loc) or "(top level)"
    kind, msg = err["type"], err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        field = next((p for p in reversed(loc) if isinstance(p, str)), "")
        noun = tag_nouns.get(str(field), "type")
        discriminator = str((err.get("ctx") or {}).get("discriminator", "'type'")).strip("'")
        expected = _tags(annotation, discriminator)
        if kind == "union_tag_not_found":
            return f"{where}.{discriminator}: missing; add one of {', '.join(expected)}"
        tag = str((err.get("ctx") or {}).get("tag", ""))
        near = close_match(tag, expected)
        tip = f"did you mean {near}? (" if near else ""
        end = ")" if near else ""
        return (
            f"{where}.{discriminator}: {tag!r} is not a {noun}; {tip}use one of "
            f"{', '.join(expected)}{end}"
        )
    if kind == "extra_forbidden":
        known = list(model.model_fields) if model is not None else []
        near = close_match(str(loc[-1]), known, cutoff=0.5)
        tip = f"did you mean {near}?" if near else f"known keys: {', '.join(known)}"
        return f"{where}: unknown key; {tip}"
    if kind == "missing":
        hint = missing_hints.get(str(loc[-1])) if loc else None
        return f"{where}: missing; add it" + (f" ({hint})" if hint else "")
    shown = json.dumps(value, ensure_ascii=False, default=str)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    if scalar_union and loc and str(loc[-1]) in scalar_hints:
        return f"{where}: {shown} {scalar_hints[str(loc[-1])]}"
    if isinstance(value, dict | list) and not scalar_union:
        return f"{where}: {msg}"  # a check of the whole mapping: its message says it
    return f"{where}: {shown} is not valid: {msg}"


def _tags(annotation: Any, discriminator: str) -> list[str]:
    """The tags of a discriminated union, in declaration order."""
    out: list[str] = []
    for m in _models(annotation):
        field = m.model_fields.get(discriminator)
        if field is not None:
            out += [str(t) for t in typing.get_args(field.annotation)]
    return out


def _walk(
    root: type[BaseModel], loc: tuple[int | str, ...]
) -> tuple[tuple[int | str, ...], type[BaseModel] | None, bool, Any]:
    """``loc`` without union tags, the model that holds its last key, whether a tag of a
    union of scalars (``str``, ``int``) was dropped, and the annotation reached."""
    kept: list[int | str] = []
    model: type[BaseModel] | None = root
    annotation: Any = None  # the annotation of the position reached, once past a field
    holder: type[BaseModel] | None = root
    scalar_union = False
    i = 0
    while i < len(loc):
        part = loc[i]
        if model is not None and isinstance(part, str):
            field = model.model_fields.get(part)
            kept.append(part)
            holder = model
            if field is None:
                model, annotation = None, None
            else:
                annotation = field.annotation
                model = None
                found = _choose(annotation, loc[i + 1] if i + 1 < len(loc) else None)
                if found is not None:
                    model, consumed = found
                    i += consumed
            i += 1
            continue
        if isinstance(part, int):
            kept.append(part)
            annotation = _item(annotation)
            found = _choose(annotation, loc[i + 1] if i + 1 < len(loc) else None)
            if found is not None:
                model, consumed = found
                i += consumed
            i += 1
            continue
        # a str part outside a model: a dict key, or the member tag of a scalar union
        if _is_dict(annotation):
            kept.append(part)
            annotation = _item(annotation)
            found = _choose(annotation, loc[i + 1] if i + 1 < len(loc) else None)
            if found is not None:
                model, consumed = found
                i += consumed
        else:
            scalar_union = True
        i += 1
    return tuple(kept), (model if model is not None else holder), scalar_union, annotation


def _members(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        out: list[Any] = []
        for arg in typing.get_args(annotation):
            out += _members(arg)
        return out
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]


def _choose(annotation: Any, tag: int | str | None) -> tuple[type[BaseModel], int] | None:
    """The model at a position of ``annotation``: the only one, or (a discriminated
    union) the member whose ``type`` literal is ``tag`` — then 1 loc part is consumed."""
    models = _models(annotation)
    if len(models) == 1:
        return models[0], 0
    for m in models:
        field = m.model_fields.get("type")
        if field is not None and tag in typing.get_args(field.annotation):
            return m, 1
    return None


def _item(annotation: Any) -> Any:
    """The element annotation of a list, tuple or dict annotation (else itself)."""
    for member in _members(annotation):
        origin = typing.get_origin(member)
        if origin in (list, tuple, set, frozenset):
            args = [a for a in typing.get_args(member) if a is not Ellipsis]
            return args[0] if args else Any
        if origin is dict:
            return typing.get_args(member)[1]
    return annotation


def _is_dict(annotation: Any) -> bool:
    return any(typing.get_origin(m) is dict for m in _members(annotation))
