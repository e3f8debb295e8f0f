"""Custom event types: checking their names and declaring them for a workspace.

A workspace's custom event types live in ``liucun.toml`` as ``[ingest]
custom_event_types``, so every later load, query and report of the workspace knows them
(docs/data-model.md, "Event types"). :func:`declare_event_types` appends to that list in
place: the rest of the file, comments included, stays as it was.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from liucun.core import SETTINGS_FILE, ConfigError, Hint
from liucun.schema import STANDARD_EVENT_TYPES

#: What an event type may look like once lower-cased: a letter or digit first, then
#: letters, digits, ``_``, ``-``, ``.`` or ``:``; at most 64 characters.
EVENT_TYPE_NAME = r"^[a-z0-9][a-z0-9_.:-]{0,63}$"
_NAME = re.compile(EVENT_TYPE_NAME)
_HEADER = re.compile(r"^\s*\[\s*ingest\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")
_KEY = re.compile(r"^\s*custom_event_types\s*=")


def parse_event_types(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"Catalog, wishlist"`` → ``("catalog", "wishlist")``: lower-cased, checked, unique."""
    parts = text.split(",") if isinstance(text, str) else [p for t in text for p in t.split(",")]
    out: list[str] = []
    for part in parts:
        name = part.strip().lower()
        if not name:
            continue
        if not _NAME.match(name):
            raise ConfigError(
                f"{part.strip()!r} is not a usable event type name; use letters, digits and "
                "_ (e.g. catalog_view), at most 64 characters",
                hint=Hint(option="event_types", example="catalog_view,wishlist"),
            )
        if name not in out:
            out.append(name)
    return tuple(out)


def declare_event_types(workspace_dir: Path, types: Iterable[str]) -> tuple[str, ...]:
    """Add ``types`` to ``[ingest] custom_event_types`` of the workspace's ``liucun.toml``.

    Standard types and types already declared are skipped; returns the ones added.
    """
    path = Path(workspace_dir) / SETTINGS_FILE
    text = path.read_text(encoding="utf-8")
    current = _declared(text, path)
    new = [t for t in parse_event_types(list(types)) if t not in current]
    new = [t for t in new if t not in STANDARD_EVENT_TYPES]
    if not new:
        return ()
    wanted = [*current, *new]
    updated = _with_list(text, wanted, path)
    if _declared(updated, path) != wanted:  # pragma: no cover - a layout we did not foresee
        raise _cannot_edit(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(updated, encoding="utf-8")
    os.replace(tmp, path)
    return tuple(new)


def _declared(text: str, path: Path) -> list[str]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML ({exc}); fix it first") from None
    value = doc.get("ingest", {}).get("custom_event_types", [])
    if not isinstance(value, list):
        raise ConfigError(f"{path}: [ingest] custom_event_types must be a list of names")
    return [str(v) for v in value]


def _with_list(text: str, names: list[str], path: Path) -> str:
    """``text`` with ``custom_event_types`` of ``[ingest]`` set to ``names``."""
    lines = text.splitlines(keepends=True)
    assignment = "custom_event_types = [" + ", ".join(f'"{n}"' for n in names) + "]\n"
    start = next((i for i, line in enumerate(lines) if _HEADER.match(line)), None)
    if start is None:
        if "custom_event_types" in text:  # e.g. a dotted key ingest.custom_event_types
            raise _cannot_edit(path)
        sep = "" if not text or text.endswith("\n") else "\n"
        return f"{text}{sep}\n[ingest]\n{assignment}"
    end = next((i for i in range(start + 1, len(lines)) if _ANY_HEADER.match(lines[i])), len(lines))
    key = next((i for i in range(start + 1, end) if _KEY.match(lines[i])), None)
    if key is None:
        return "".join([*lines[: start + 1], assignment, *lines[start + 1 :]])
    stop = key + 1  # the assignment may span lines (a multi-line array)
    while stop <= end:
        try:
            tomllib.loads("".join(lines[key:stop]))
            break
        except tomllib.TOMLDecodeError:
            stop += 1
    else:  # pragma: no cover - the file parsed as a whole, so the value ends somewhere
        raise _cannot_edit(path)
    return "".join([*lines[:key], assignment, *lines[stop:]])


def _cannot_edit(path: Path) -> ConfigError:
    return ConfigError(
        f"cannot add the event types to {path} automatically; add them to "
        "custom_event_types under [ingest] by hand",
        hint=Hint(option="custom_event_types", setting="ingest.custom_event_types"),
    )
