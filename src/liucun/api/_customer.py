"""What ``GET /v1/users/{id}`` answers — for now.

TEMPORARY: :func:`customer_view` is the one call behind the route. It returns what the
warehouse's ``users`` and ``identities`` tables hold. The full customer-360 (tags, stage,
segment, latest scores with reasons, loyalty account, consents, active journeys) is
``liucun.journeys.customer_view(ws, user_id)``, written elsewhere; when it lands, make
this function call it (or point the route at it) — nothing else changes.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from liucun.warehouse import current_identities


def customer_view(ws: Any, user_id: str) -> dict[str, Any] | None:
    """The customer ``user_id`` (any alias of theirs: a merged user id, an anonymous
    id) as a JSON-ready dict; None when the warehouse knows no such customer."""
    ids = current_identities(ws.table("identities"))
    hit = ids.filter((ids["alias"] == user_id) & ids.alias_type.isin(["user_id", "anonymous_id"]))
    found = hit.select("canonical").limit(1).to_pyarrow().to_pylist()
    canonical = found[0]["canonical"] if found else user_id
    customers = ws.customers()
    rows = customers.filter(customers.user_id == canonical).to_pyarrow().to_pylist()
    aliases = (
        ids.filter(ids.canonical == canonical)
        .select("alias_type", "alias")
        .order_by(["alias_type", "alias"])
        .to_pyarrow()
        .to_pylist()
    )
    if not rows and not aliases:
        return None
    row = rows[0] if rows else {}
    attributes = row.pop("attributes", None)
    profile = {
        k: _plain(v)
        for k, v in row.items()
        if k not in ("user_id", "raw_user_id", "ingested_at", "load_id")
    }
    return {
        "user_id": canonical,
        "requested_id": user_id,
        "profile": profile,
        "attributes": json.loads(attributes) if attributes else {},
        "aliases": [{"type": a["alias_type"], "value": a["alias"]} for a in aliases],
        "updated_at": _plain(row.get("ingested_at")),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
