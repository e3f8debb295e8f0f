"""Column mapping: input names → canonical names; everything else goes to a JSON column."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence

from liucun.core import ConfigError, Hint, InvalidInput
from liucun.schema import normalize_name

__all__ = ["looks_headerless", "missing_column_error", "normalize_name", "parse_mapping"]


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """Parse ``SOURCE=CANONICAL`` pairs (the CLI's ``--map``) into a mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        source, sep, target = pair.partition("=")
        if not sep or not source.strip() or not target.strip():
            raise ConfigError(
                f"the mapping {pair!r} is not SOURCE=CANONICAL",
                hint=Hint(option="mapping", example="order_date=ts", setting="mapping"),
            )
        mapping[source.strip()] = target.strip()
    return mapping


def plan_columns(
    columns: Sequence[str],
    mapping: Mapping[str, str],
    canonical: Sequence[str],
    *,
    source: str,
) -> dict[str, str]:
    """Decide the canonical name of every input column; returns ``{input: canonical}``.

    Input columns that are neither mapped nor canonical (after name normalization) map to
    themselves and end up in the JSON column (``properties`` / ``attributes``).
    """
    canonical_set = set(canonical)
    by_normal = {normalize_name(c): c for c in columns}
    for target in mapping.values():
        if target not in canonical_set:
            raise ConfigError(
                f"mapping target {target!r} is not a canonical column; choose one of "
                f"{', '.join(canonical)}"
            )
    plan: dict[str, str] = {}
    for src, target in mapping.items():
        actual = src if src in columns else by_normal.get(normalize_name(src))
        if actual is None:
            continue  # a workspace-wide mapping need not apply to every file
        plan[actual] = target
    _refuse_normalized_twins([c for c in columns if c not in plan], source=source)
    taken = set(plan.values())
    for col in columns:
        if col in plan:
            continue
        normal = normalize_name(col)
        if normal in canonical_set and normal not in taken:
            plan[col] = normal
            taken.add(normal)
        else:
            plan[col] = col
    targets = [t for t in plan.values() if t in canonical_set]
    dupes = sorted({t for t in targets if targets.count(t) > 1})
    if dupes:
        raise InvalidInput(
            f"{source}: several input columns map to {', '.join(dupes)}; keep one of them "
            "(check the mapping)",
            hint=Hint(option="mapping", setting="mapping"),
        )
    return plan


def _refuse_normalized_twins(columns: Sequence[str], *, source: str) -> None:
    """Refuse two header names that are one name once normalized (``user_id``, ``USER ID``).

    Otherwise the first would take the canonical column and the second slip silently into
    the JSON column (or overwrite a key there).
    """
    groups: dict[str, list[str]] = {}
    for col in columns:
        normal = normalize_name(col)
        if normal:
            groups.setdefault(normal, []).append(col)
    for normal, names in groups.items():
        if len(names) > 1:
            both = " and ".join(repr(n) for n in names)
            raise InvalidInput(
                f"{source}: the header has columns {both}, which are the same name "
                f"({normal!r}) once case, spaces and punctuation are ignored; remove or "
                "rename one of them, or map one onto another column",
                hint=Hint(option="mapping", setting="mapping"),
            )


def missing_column_error(
    missing: str, columns: Sequence[str], *, source: str, hint: Hint | None = None
) -> InvalidInput:
    """An error for a required column that is absent, suggesting a mapping onto it.

    ``hint`` replaces the suggested mapping (e.g. ``event_type`` may be given instead).
    """
    close = difflib.get_close_matches(missing, list(columns), n=1, cutoff=0.5)
    shown = ", ".join(columns[:12]) + (" …" if len(columns) > 12 else "")
    holder = close[0] if close else "YOUR_COLUMN"
    suggestion = (
        f"; if '{close[0]}' holds it, map it onto {missing}"
        if close
        else f"; map the column that holds it onto {missing}"
    )
    return InvalidInput(
        f"{source}: required column '{missing}' is missing (columns: {shown}){suggestion}",
        hint=hint or Hint(option="mapping", example=f"{holder}={missing}", setting="mapping"),
    )


def looks_headerless(columns: Sequence[str]) -> bool:
    """True when the 'header' looks like data: numbers, dates or ids rather than names."""
    data_like = re.compile(r"^[-+]?\d[\d.:/ T+-]*Z?$")
    return bool(columns) and sum(bool(data_like.match(c.strip())) for c in columns) >= max(
        1, len(columns) // 2
    )
